#!/usr/bin/env python3
"""Golden FourierFT fixtures made by Hugging Face PEFT itself, for the Java merge and loader tests.

Run where PyTorch, transformers and PEFT are installed (the GPU test machines; no network needed):

    python3 src/test/python/make_peft_fixtures.py src/test/resources/peft-fixtures src/test/resources/java-saved-adapter

It writes, all small:
  linear/base/model.safetensors         float32 model: Linear layers of odd and even shapes, an embedding
  linear/base_bf16/model.safetensors    the same model in bfloat16
  linear/adapter/                       FourierFT adapter (random spectrum, seed 2024, n 50, "fc": 200)
  linear/merged/model.safetensors       PEFT's merge_and_unload() of the float32 model
  linear/merged_bf16/model.safetensors  PEFT's merge_and_unload() of the bfloat16 model
  linear/indices.safetensors            PEFT's frequency indices per module (int64, 2 x n)
  conv1d/base/model.safetensors         GPT-2-style model: transformers Conv1D layers (weights in x out)
  conv1d/adapter/                       FourierFT adapter on the Conv1D layers (fan_in_fan_out true)
  conv1d/expected/model.safetensors     W + get_delta_weight().T, checked here against PEFT's forward
  manifest.json                         versions, settings, and the check below

It also loads the adapter this library saved (src/test/resources/java-saved-adapter/adapter, committed,
kept current by JavaSavedAdapterFixtureTest) into PEFT and checks PEFT's get_delta_weight against the
float64 reference's ΔW saved beside it: PEFT must read our adapters as we mean them.

For Conv1D layers PEFT's merge() adds get_delta_weight() (out x in) to the in x out weight without
transposing it (a shape error for non-square layers), while its unmerged forward applies x @ dW.T. The
expected merge is therefore taken from the forward: W + dW.T, and this script checks that the merged
layers reproduce PEFT's unmerged outputs.
"""
import copy
import json
import os
import sys

import torch
from torch import nn
from safetensors.torch import load_file, save_file
from transformers.pytorch_utils import Conv1D
import peft
from peft import FourierFTConfig, PeftModel, get_peft_model


class TinyLinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(50, 16)
        self.model.layers = nn.ModuleList([nn.Module(), nn.Module()])
        attn = nn.Module()
        attn.q_proj = nn.Linear(29, 37)              # weight 37 x 29
        attn.v_proj = nn.Linear(37, 29, bias=False)  # weight 29 x 37
        self.model.layers[0].self_attn = attn
        mlp = nn.Module()
        mlp.fc = nn.Linear(48, 64)                   # weight 64 x 48
        self.model.layers[1].mlp = mlp

    def forward(self, x):
        a = self.model.layers[0].self_attn
        h = a.v_proj(a.q_proj(x))
        return h


class TinyGpt2Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.Module()
        block = nn.Module()
        block.attn = nn.Module()
        block.attn.c_attn = Conv1D(40, 24)  # nf = 40 out, nx = 24 in: weight 24 x 40
        block.attn.c_proj = Conv1D(24, 24)  # square
        self.transformer.h = nn.ModuleList([block])

    def forward(self, x):
        return self.transformer.h[0].attn.c_attn(x)


def state(model):
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def save(tensors, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata={"format": "pt"})


def linear_fixtures(out):
    torch.manual_seed(1)
    base = TinyLinearModel()
    base_state = state(base)
    save(base_state, f"{out}/linear/base/model.safetensors")
    save({k: v.to(torch.bfloat16) for k, v in base_state.items()}, f"{out}/linear/base_bf16/model.safetensors")

    config = FourierFTConfig(n_frequency=50, n_frequency_pattern={"fc": 200}, scaling=120.0, random_loc_seed=2024,
                             target_modules=["q_proj", "v_proj", "fc"], init_weights=False)
    torch.manual_seed(2)  # the random spectrum (init_weights=False: standard normal)
    model = get_peft_model(copy.deepcopy(base), config)
    model.save_pretrained(f"{out}/linear/adapter")

    indices = {}
    for name, module in model.named_modules():
        if hasattr(module, "indices") and "default" in getattr(module, "indices", {}):
            key = name.removeprefix("base_model.model.")
            indices[key] = module.indices["default"].to(torch.int64).contiguous()
    save(indices, f"{out}/linear/indices.safetensors")

    merged = model.merge_and_unload()
    save(state(merged), f"{out}/linear/merged/model.safetensors")

    bf16 = copy.deepcopy(base).to(torch.bfloat16)
    loaded = PeftModel.from_pretrained(bf16, f"{out}/linear/adapter")
    save(state(loaded.merge_and_unload()), f"{out}/linear/merged_bf16/model.safetensors")
    return config


def conv1d_fixtures(out):
    torch.manual_seed(3)
    base = TinyGpt2Model()
    save(state(base), f"{out}/conv1d/base/model.safetensors")
    config = FourierFTConfig(n_frequency=60, scaling=150.0, random_loc_seed=777, fan_in_fan_out=True,
                             target_modules=["c_attn", "c_proj"], init_weights=False)
    torch.manual_seed(4)
    model = get_peft_model(copy.deepcopy(base), config)
    model.save_pretrained(f"{out}/conv1d/adapter")

    expected = state(base)
    x = torch.randn(5, 24)
    for name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "fourierft_spectrum"):
            key = name.removeprefix("base_model.model.")
            with torch.no_grad():
                delta = module.get_delta_weight("default")  # out x in
                w = module.get_base_layer().weight          # in x out
                merged_w = w + delta.T
                expected[key + ".weight"] = merged_w.detach().contiguous().clone()
                # the merged weight must reproduce PEFT's unmerged forward
                peft_y = module(x)
                merged_y = x @ merged_w + module.get_base_layer().bias
                assert torch.allclose(peft_y, merged_y, rtol=1e-5, atol=1e-5), key
    save(expected, f"{out}/conv1d/expected/model.safetensors")
    return config


def check_java_saved_adapter(java_dir):
    expected = load_file(os.path.join(java_dir, "expected_delta.safetensors"))
    torch.manual_seed(5)
    model = PeftModel.from_pretrained(TinyLinearModel(), os.path.join(java_dir, "adapter"))
    errors = {}
    for name, module in model.named_modules():
        if hasattr(module, "fourierft_spectrum") and "default" in module.fourierft_spectrum:
            key = name.removeprefix("base_model.model.")
            with torch.no_grad():
                delta = module.get_delta_weight("default").float()
            ref = expected[key]
            errors[key] = ((delta - ref).norm() / ref.norm()).item()
            assert errors[key] < 1e-5, (key, errors[key])
    assert sorted(errors) == sorted(expected), (sorted(errors), sorted(expected))
    return {"layers": len(errors), "worst_relative_error": max(errors.values())}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "src/test/resources/peft-fixtures"
    java_dir = sys.argv[2] if len(sys.argv) > 2 else "src/test/resources/java-saved-adapter"
    torch.use_deterministic_algorithms(True)
    linear = linear_fixtures(out)
    conv = conv1d_fixtures(out)
    java_saved = check_java_saved_adapter(java_dir)
    manifest = {
        "made_by": "src/test/python/make_peft_fixtures.py",
        "torch": torch.__version__,
        "peft": peft.__version__,
        "linear": {"n_frequency": linear.n_frequency, "n_frequency_pattern": linear.n_frequency_pattern,
                   "scaling": linear.scaling, "random_loc_seed": linear.random_loc_seed},
        "conv1d": {"n_frequency": conv.n_frequency, "scaling": conv.scaling, "random_loc_seed": conv.random_loc_seed,
                   "expected": "W + get_delta_weight().T (PEFT's unmerged forward)"},
        "java_saved_adapter_loaded_by_peft": java_saved,
    }
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
