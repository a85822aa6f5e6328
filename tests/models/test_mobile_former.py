"""Mobile-Former: reduced-config forwards, operator maths by hand, official key lists, sizes."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from litevit.errors import CheckpointError, InputSizeError
from litevit.flops import count_model
from litevit.models import create_model, get_model_cfg, list_models
from litevit.models._pretrained import (
    check_state_dict,
    checkpoint_keys,
    convert_checkpoint,
    state_dict_from_key_list,
)
from litevit.models.mobile_former import (
    ChannelShuffle,
    DynamicReLU,
    Former,
    FormerToMobile,
    MobileToFormer,
    channel_shuffle,
)

KEYS_DIR = Path(__file__).parents[1] / "fixtures" / "keys"
VARIANTS = ["26m", "52m", "96m", "151m", "214m", "294m", "508m"]

# Parameter counts measured by instantiating the official AAboys/MobileFormer classes
# (docs/model-figures.md, Mobile-Former: 3.233 / 3.469 / 4.585 / 7.596 / 9.426 / 11.423 / 13.977 M).
OFFICIAL_PARAMS = {
    "26m": 3_232_788,
    "52m": 3_469_092,
    "96m": 4_585_252,
    "151m": 7_595_828,
    "214m": 9_425_920,
    "294m": 11_422_648,
    "508m": 13_976_976,
}

TINY = get_model_cfg("mobile_former_26m").smoke_arch


def tiny(variant: str, **kwargs):
    return create_model(f"mobile_former_{variant}", **{**TINY, **kwargs})


def load_keys(variant: str) -> dict[str, list[int]]:
    return json.loads((KEYS_DIR / f"mobile_former_{variant}.json").read_text())


def test_all_seven_variants_are_registered():
    assert list_models("mobile_former_*") == [f"mobile_former_{v}" for v in VARIANTS]


@pytest.mark.parametrize("variant", VARIANTS)
def test_reduced_config_forward_shapes(variant):
    model = tiny(variant, num_classes=10, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features, tokens = model.forward_features(x)
        logits = model(x)
        pre = model.forward_head((features, tokens), pre_logits=True)
    assert features.shape == (2, 24, 8, 8)  # stem /2, two stride-2 blocks
    assert tokens.shape == (2, TINY["token_num"], TINY["token_dim"])
    assert pre.shape == (2, 64)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


def test_non_square_and_smallest_sizes_run():
    for size in [(96, 64), (32, 32)]:
        model = tiny("294m", img_size=size)
        with torch.no_grad():
            assert model(torch.randn(1, 3, *size)).shape == (1, 1000)


def test_bad_input_sizes_raise():
    model = tiny("52m", img_size=64)
    with pytest.raises(InputSizeError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 48))
    with pytest.raises(InputSizeError, match="batch, 3, height, width"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(InputSizeError):
        create_model("mobile_former_26m", img_size=100)


def test_num_classes_changes_only_the_last_linear():
    model = create_model("mobile_former_96m", num_classes=7)
    assert model.classifier.classifier[1].out_features == 7
    assert model.classifier.fc[0].out_features == 1280
    assert model.cfg.label_set == "custom"


def test_data_config():
    cfg = get_model_cfg("mobile_former_508m").data_config()
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["interpolation"] == "bilinear"
    assert cfg["crop_pct"] == 0.875
    assert cfg["mean"] == (0.485, 0.456, 0.406)
    assert cfg["std"] == (0.229, 0.224, 0.225)


def test_dynamic_relu_is_max_of_two_slopes_from_token_zero():
    torch.manual_seed(0)
    act = DynamicReLU(token_dim=16, channels=5, reduction=4)
    tokens = torch.randn(3, 4, 16)
    x = torch.randn(3, 5, 6, 7)
    lin1, lin2 = act.hyper[0], act.hyper[2]
    hidden = torch.clamp(tokens[:, 0] @ lin1.weight.T + lin1.bias, min=0)
    h = torch.clamp(hidden @ lin2.weight.T + lin2.bias + 3, 0, 6) / 6
    a1 = (h[:, :5] - 0.5) * 2 + 1
    a2 = (h[:, 5:] - 0.5) * 2
    expected = torch.max(x * a1[:, :, None, None], x * a2[:, :, None, None])
    assert torch.allclose(act(x, tokens), expected, atol=1e-6)
    # Only token 0 matters.
    other = tokens.clone()
    other[:, 1:] = torch.randn(3, 3, 16)
    assert torch.equal(act(x, other), act(x, tokens))


def test_channel_shuffle_matches_index_permutation():
    x = torch.randn(2, 12, 3, 3)
    groups, per_group = 4, 3
    perm = [0] * 12
    for g in range(groups):
        for i in range(per_group):
            perm[i * groups + g] = g * per_group + i
    assert torch.equal(channel_shuffle(x, groups), x[:, perm])
    assert torch.equal(ChannelShuffle(groups)(x), x[:, perm])


def test_26m_groups_and_shuffles_its_pointwise_convs():
    grouped = create_model("mobile_former_26m")
    plain = create_model("mobile_former_52m")
    lite, dna, dna3 = grouped.features[0], grouped.features[1], grouped.features[2]
    assert lite.conv[4].groups == 4 and isinstance(lite.conv[3], ChannelShuffle) and lite.conv[3].groups == 8
    assert dna.conv1[0].groups == 4 and dna.conv3[0].groups == 4
    assert isinstance(dna.conv1[2], ChannelShuffle) and dna.conv1[2].groups == 4
    assert isinstance(dna.conv3[2], ChannelShuffle) and dna.conv3[2].groups == 4
    # Downsampling block: one shuffle group per input channel after each depthwise expansion.
    assert dna3.conv2[0].groups == 4 and dna3.conv4[0].groups == 4
    assert dna3.conv1[2].groups == 12 and dna3.conv3[2].groups == 24
    assert isinstance(grouped.classifier.conv[0], ChannelShuffle) and grouped.classifier.conv[1].groups == 4
    assert not any(isinstance(m, ChannelShuffle) for m in plain.modules())
    assert all(m.groups in (1, m.in_channels) for m in plain.modules() if isinstance(m, torch.nn.Conv2d))


def test_mobile_to_former_matches_per_head_reference():
    torch.manual_seed(0)
    bridge = MobileToFormer(channels=8, token_dim=12, num_heads=2)
    x, tokens = torch.randn(2, 8, 3, 5), torch.randn(2, 4, 12)
    q = bridge.q(tokens)
    heads = []
    for h in range(2):
        kv = x[:, 4 * h : 4 * h + 4].flatten(2)  # B, 4, HW; no K/V projection
        attn = torch.softmax(torch.einsum("bmc,bcn->bmn", q[..., 4 * h : 4 * h + 4], kv) / 2.0, dim=-1)
        heads.append(torch.einsum("bmn,bcn->bmc", attn, kv))
    gate = 2 * F.hardsigmoid(bridge.alpha[0](tokens))
    expected = bridge.layer_norm(tokens + bridge.proj(torch.cat(heads, -1) * gate))
    assert torch.allclose(bridge(x, tokens), expected, atol=1e-5)


def test_former_matches_per_head_reference():
    torch.manual_seed(0)
    former = Former(token_dim=16, num_heads=4, ffn_ratio=2)
    assert former.ffn[0].out_features == 32
    tokens = torch.randn(2, 5, 16)
    q = former.q(tokens)
    heads = []
    for h in range(4):
        kv = tokens[..., 4 * h : 4 * h + 4]  # K = V = tokens
        attn = torch.softmax(q[..., 4 * h : 4 * h + 4] @ kv.transpose(1, 2) / 2.0, dim=-1)
        heads.append(attn @ kv)
    mid = former.layer_norm(tokens + former.channel_mlp(torch.cat(heads, -1)))
    expected = former.ffn_norm(mid + former.ffn(mid))
    assert torch.allclose(former(tokens), expected, atol=1e-5)


def test_former_to_mobile_matches_per_head_reference():
    torch.manual_seed(0)
    bridge = FormerToMobile(channels=8, token_dim=12, num_heads=2)
    x, tokens = torch.randn(2, 8, 3, 5), torch.randn(2, 4, 12)
    k, v = bridge.k(tokens), bridge.proj(tokens)
    heads = []
    for h in range(2):
        q = x[:, 4 * h : 4 * h + 4].flatten(2)  # B, 4, HW; no Q projection
        attn = torch.softmax(torch.einsum("bcn,bmc->bnm", q, k[..., 4 * h : 4 * h + 4]) / 2.0, dim=-1)
        heads.append(torch.einsum("bnm,bmc->bcn", attn, v[..., 4 * h : 4 * h + 4]))
    expected = x + torch.cat(heads, 1).reshape(2, 8, 3, 5)
    assert torch.allclose(bridge(x, tokens), expected, atol=1e-5)


def test_mobile_to_former_reads_the_block_input_resolution():
    model = create_model("mobile_former_508m")
    seen = {}

    def record_input(module, args, output):
        seen["x"] = args[0].shape

    model.features[1].local_global.register_forward_hook(record_input)
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert seen["x"] == (1, 24, 112, 112)


@pytest.mark.parametrize("variant", VARIANTS)
def test_official_key_list_loads_and_param_count_matches(variant):
    keys = load_keys(variant)
    model = create_model(f"mobile_former_{variant}")
    # Same names, shapes and order as the release (BatchNorm buffers included).
    assert [(k, list(s)) for k, s in checkpoint_keys(model).items()] == list(keys.items())
    state = convert_checkpoint(model, state_dict_from_key_list(keys))
    check_state_dict(model, state)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[variant]


def test_checkpoint_without_batch_counters_still_loads():
    keys = {k: s for k, s in load_keys("26m").items() if not k.endswith("num_batches_tracked")}
    model = create_model("mobile_former_26m")
    check_state_dict(model, convert_checkpoint(model, state_dict_from_key_list(keys)))


def test_corrupted_key_list_is_refused_with_key_names():
    keys = load_keys("508m")
    removed = "features.3.hyper1.hyper.2.weight"
    renamed = "classifier.fc.0.weight"
    del keys[removed]
    keys["classifier.fc.zero.weight"] = keys.pop(renamed)
    model = create_model("mobile_former_508m")
    with pytest.raises(CheckpointError) as err:
        check_state_dict(model, convert_checkpoint(model, state_dict_from_key_list(keys)))
    message = str(err.value)
    assert removed in message and renamed in message and "classifier.fc.zero.weight" in message


@pytest.mark.parametrize("variant", VARIANTS)
def test_macs_match_published_madds(variant):
    with torch.device("meta"):  # counted without arithmetic
        model = create_model(f"mobile_former_{variant}")
    published = model.cfg.paper.gmacs * 1e9
    # The published MAdds include BatchNorm; fvcore-style counting matches within 1 %.
    assert abs(count_model(model).macs - published) / published < 0.01


def test_training_step_backpropagates_to_every_parameter():
    model = tiny("26m", num_classes=5, img_size=64, drop_rate=0.1, drop_path_rate=0.1)
    model.train()
    x = torch.randn(4, 3, 64, 64)
    target = torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(model(x), target)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert model.tokens.weight.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    optimizer.step()
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
