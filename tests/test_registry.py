"""Registry, model configs and the errors users see."""

import pytest
import torch

import litevit
from litevit.errors import InputSizeError, LitevitError, UnknownModelError
from litevit.models import create_model, get_model_cfg, list_models

EXPECTED_MODELS = {
    "lvt",
    "lvt_seg",
    "elsa_swin_tiny",
    "elsa_swin_small",
    "elsa_swin_base",
    *(f"mobile_former_{m}m" for m in (26, 52, 96, 151, 214, 294, 508)),
    "segvit_vit_b_ade",
    "segvit_vit_l_ade",
    "segvit_shrunk_vit_l_ade",
}


def test_every_product_model_is_registered():
    assert EXPECTED_MODELS <= set(list_models())
    assert litevit.list_models("mobile_former_*") == [
        f"mobile_former_{m}m" for m in (26, 52, 96, 151, 214, 294, 508)
    ]


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        create_model("lvtt")
    message = str(err.value)
    assert "'lvtt'" in message and "Did you mean lvt" in message
    assert "mobile_former_294m" in message and "\n" not in message
    assert isinstance(err.value, LitevitError)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_cfg_is_complete(name):
    cfg = get_model_cfg(name)
    assert cfg.name == name
    assert cfg.task in ("classification", "segmentation")
    assert cfg.label_set == ("imagenet1k" if cfg.task == "classification" else "ade20k150")
    assert cfg.num_classes == (1000 if cfg.task == "classification" else 150)
    assert cfg.check_img_size(cfg.input_size) == cfg.input_size
    assert cfg.paper.params_m and cfg.paper.gmacs and cfg.paper.source
    assert cfg.checkpoint
    data = cfg.data_config()
    assert data["input_size"] == (3, *cfg.input_size) and len(data["mean"]) == len(data["std"]) == 3
    if cfg.task == "classification":
        assert 0.5 < cfg.crop_pct <= 1.0
    else:
        assert cfg.seg_resize


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_bad_image_size_is_one_sentence_naming_the_constraint(name):
    cfg = get_model_cfg(name)
    bad = (cfg.input_size[0] + 1, cfg.input_size[1])
    with pytest.raises(InputSizeError) as err:
        create_model(name, img_size=bad)
    assert f"multiples of {cfg.size_divisor}" in str(err.value)
    assert f"{bad[0]}x{bad[1]}" in str(err.value)


def test_forward_refuses_wrong_input_shapes():
    model = create_model("mobile_former_26m")
    with pytest.raises(InputSizeError, match="multiples of 32; got 65x64"):
        model(torch.zeros(1, 3, 65, 64))
    with pytest.raises(InputSizeError, match=r"\(batch, 3, height, width\)"):
        model(torch.zeros(1, 1, 64, 64))


def test_init_is_deterministic_and_overrides_apply():
    a = create_model("mobile_former_26m", num_classes=10)
    b = create_model("mobile_former_26m", num_classes=10)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert a.cfg.num_classes == 10 and a.cfg.label_set == "custom"
    assert a(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    assert not a.training
