"""Reference state_dict keys and a reference checkpoint for `wavessm weights` (needs torch).

Not run by the tests (CI has no torch): the key lists in tests/weights.rs were printed by
`keys`, and `example` writes a checkpoint of state-spaces/s4's example.py model plus its output
for the manual comparison described in the README ("Moving weights to and from PyTorch").

    python scripts/torch_reference.py keys S4_PY S4D_PY DSS_PY
    python scripts/torch_reference.py example S4_PY S4D_PY DSS_PY LAYER OUT_DIR
        (LAYER: s4d, s4, s4-fresh, s4-diag, s4-bi2 or dss; writes OUT_DIR/LAYER/{model,io}.safetensors,
        which `WAVESSM_TORCH_REF=OUT_DIR cargo test --release --test weights -- --ignored` reads)

S4_PY is state-spaces/s4 `models/s4/s4.py`, S4D_PY its `models/s4/s4d.py`, DSS_PY
ag1988/dss `src/models/sequence/ss/standalone/dss.py`. The safetensors file is written without
the `safetensors` package (same format as `safetensors.torch.save_file`).
"""

import importlib.util
import json
import os
import struct
import sys
import types

import torch
import torch.nn as nn


def stub_modules():
    # s4.py imports pytorch_lightning only for `rank_zero_only`; s4d.py imports DropoutNd from
    # the repo's src.models.nn; dss.py needs opt_einsum and omegaconf's DictConfig.
    pl = types.ModuleType("pytorch_lightning")
    pl.utilities = types.ModuleType("pytorch_lightning.utilities")
    pl.utilities.rank_zero_only = lambda f: f
    sys.modules["pytorch_lightning"] = pl
    sys.modules["pytorch_lightning.utilities"] = pl.utilities
    oe = types.ModuleType("opt_einsum")
    oe.contract = torch.einsum
    oe.contract_expression = None
    sys.modules["opt_einsum"] = oe
    oc = types.ModuleType("omegaconf")

    class DictConfig(dict):
        def __getattr__(self, k):
            return self[k]

    oc.DictConfig = DictConfig
    sys.modules["omegaconf"] = oc


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def modules(s4_py, s4d_py, dss_py):
    stub_modules()
    s4 = load("ref_s4", s4_py)
    for n in ["src", "src.models", "src.models.nn"]:
        sys.modules.setdefault(n, types.ModuleType(n))
    sys.modules["src.models.nn"].DropoutNd = s4.DropoutNd
    s4d = load("ref_s4d", s4d_py)
    dss = load("ref_dss", dss_py)
    return s4, s4d, dss


class ExampleModel(nn.Module):
    """example.py's S4Model (postnorm, mean pooling) around any layer returning (y, state)."""

    def __init__(self, make_layer, d_input, d_output, d_model, n_layers):
        super().__init__()
        self.encoder = nn.Linear(d_input, d_model)
        self.s4_layers = nn.ModuleList([make_layer() for _ in range(n_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layers)])
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x):
        x = self.encoder(x).transpose(-1, -2)
        for layer, norm in zip(self.s4_layers, self.norms):
            z, _ = layer(x)
            x = norm((z + x).transpose(-1, -2)).transpose(-1, -2)
        return self.decoder(x.transpose(-1, -2).mean(dim=1))


def layer_factory(mods, kind, h):
    s4, s4d, dss = mods
    if kind == "s4d":
        return lambda: s4d.S4D(h, d_state=4, transposed=True)
    if kind == "s4":
        return lambda: s4.S4Block(h, d_state=4, transposed=True, mode="nplr", l_max=8)
    if kind == "s4-diag":
        return lambda: s4.S4Block(h, d_state=4, transposed=True, mode="diag", init="diag-lin")
    if kind == "s4-bi2":
        return lambda: s4.S4Block(h, d_state=4, transposed=True, mode="nplr", l_max=8, channels=2,
                                  bidirectional=True)
    if kind == "dss":
        return lambda: dss.DSS(h, d_state=4, transposed=True)
    raise SystemExit(f"unknown layer {kind}")


def sequence_keys(mods, kind, h):
    """state-spaces/s4's Lightning SequenceLightningModule around SequenceModel (prenorm, LayerNorm,
    linear encoder, sequence decoder): the wrapper paths are read from train.py,
    backbones/model.py, block.py, nn/normalization.py, tasks/{encoders,decoders}.py; the layer is
    the standalone S4Block, which has the same parameters as src/models/sequence/modules/s4block.py."""
    root = nn.Module()
    root.encoder = nn.Sequential(nn.Linear(1, h))
    root.model = nn.Module()
    blocks = []
    for _ in range(2):
        b = nn.Module()
        b.layer = layer_factory(mods, kind, h)()
        b.norm = nn.Module()
        b.norm.norm = nn.LayerNorm(h)
        blocks.append(b)
    root.model.layers = nn.ModuleList(blocks)
    root.model.norm = nn.Module()
    root.model.norm.norm = nn.LayerNorm(h)
    dec = nn.Module()
    dec.output_transform = nn.Linear(h, 3)
    root.decoder = nn.Sequential(dec)
    return root.state_dict()


def save_safetensors(tensors, path):
    header, blobs, off = {}, [], 0
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    for k, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(0)
    mode = sys.argv[1]
    mods = modules(*sys.argv[2:5])
    h = 4
    if mode == "keys":
        for kind in ["s4d", "s4", "s4-diag", "s4-bi2", "dss"]:
            m = ExampleModel(layer_factory(mods, kind, h), 1, 3, h, 2)
            print(f"# s4-example / {kind} (H={h}, N=4, 2 layers, d_input=1, d_output=3)")
            for k, v in m.state_dict().items():
                print(f'("{k}", &{list(v.shape)}),')
        for kind in ["s4", "dss"]:
            print(f"# s4-sequence / {kind}")
            for k, v in sequence_keys(mods, kind, h).items():
                print(f'("{k}", &{list(v.shape)}),')
    elif mode == "example":
        kind, out = sys.argv[5], sys.argv[6]
        # L equals the S4 kernels' l_max (8): with a longer input s4.py would truncate the kernel.
        h, n_layers, L = 8, 2, 8
        # `s4-fresh`: S4 saved before its first forward (plain C, l_kernel 0).
        fresh = kind.endswith("-fresh")
        m = ExampleModel(layer_factory(mods, kind.removesuffix("-fresh"), h), 2, 3, h, n_layers).eval()
        x = torch.randn(2, L, 2)
        sd = {k: v.clone() for k, v in m.state_dict().items()}
        with torch.no_grad():
            y = m(x)  # s4.py turns C into C~ and sets l_kernel on its first forward
        if not fresh:
            sd = {k: v for k, v in m.state_dict().items()}
        os.makedirs(f"{out}/{kind}", exist_ok=True)
        save_safetensors(sd, f"{out}/{kind}/model.safetensors")
        save_safetensors({"x": x, "y": y}, f"{out}/{kind}/io.safetensors")
        print(kind, json.dumps({"y": y.tolist()}))


if __name__ == "__main__":
    main()
