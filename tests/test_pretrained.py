"""Checkpoint reading and key checking, independent of any family's key mapping."""

import argparse

import pytest
import torch

from litevit.errors import CheckpointError
from litevit.models import create_model, load_pretrained, read_state_dict


@pytest.fixture()
def model():
    return create_model("mobile_former_26m")


def test_timm_style_checkpoint_with_namespace_and_module_prefix_loads(model, tmp_path):
    state = {f"module.{k}": v.clone() + 1 for k, v in model.state_dict().items()}
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=1e-3), "epoch": 3}, path)
    load_pretrained(model, path)
    first = next(iter(model.state_dict()))
    assert torch.equal(model.state_dict()[first], state[f"module.{first}"])


def test_ema_weights_are_chosen_on_request(model, tmp_path):
    state = model.state_dict()
    path = tmp_path / "ema.pth"
    torch.save({"state_dict": state, "state_dict_ema": {k: v + 2 for k, v in state.items()}}, path)
    assert (
        next(iter(read_state_dict(path, use_ema=True).values())).flatten()[0]
        == next(iter(state.values())).flatten()[0] + 2
    )
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match="no 'state_dict_ema'"):
        read_state_dict(path, use_ema=True)


def test_missing_unexpected_and_mismatched_keys_are_listed(model):
    state = dict(model.state_dict())
    dropped = next(iter(state))
    del state[dropped]
    state["not.a.key"] = torch.zeros(1)
    last = list(state)[-2]
    state[last] = torch.zeros(3, 3, 3)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(model, state)
    message = str(err.value)
    assert f"missing (1): {dropped}" in message
    assert "unexpected (1): not.a.key" in message
    assert f"shape mismatch (1): {last} (3, 3, 3)" in message


def test_unreadable_files_give_one_sentence(tmp_path, model):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_pretrained(model, junk)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match="holds a list"):
        read_state_dict(listing)
