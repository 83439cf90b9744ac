"""Projectors: shapes, parameter counts at real dimensions, gradients, config round trip, the CLI."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

from kvcap.cli import main
from kvcap.config import Config, ProjectorConfig
from kvcap.model.dims import DimsError, llm_hidden, vision_dims
from kvcap.model.projectors import (
    PROJECTORS,
    UnknownProjectorError,
    build_projector,
    count_projector,
    projector_kwargs,
)
from kvcap.model.projectors.cabstractor import pooled_grid

NAMES = ["linear", "mlp2x_gelu", "perceiver", "cabstractor", "mixer"]

# Small dimensions: Dv 32, Dl 48, 8 frames of a 4x4 patch grid.
DV, DL, T, N = 32, 48, 8, 16
SMALL_ARGS = {
    "linear": {},
    "mlp2x_gelu": {},
    "perceiver": {"num_tokens": 16, "depth": 2, "heads": 4},
    "cabstractor": {"num_tokens": 16, "depth": 1},
    "mixer": {"num_tokens": 16},
}
SMALL_TOKENS = {"linear": T * N, "mlp2x_gelu": T * N, "perceiver": 16, "cabstractor": 16, "mixer": 16}

# Real dimensions: CLIP ViT-L/14-336 (1024-d, 576 patches) -> Qwen3-8B (4096-d), 8 frames.
REAL = dict(vision_dim=1024, llm_dim=4096, frames=8, patches=576)


def small(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_projector(name, DV, DL, T, N, **{**SMALL_ARGS[name], **overrides})


def features(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, T, N, DV, generator=torch.Generator().manual_seed(seed))  # (B, T, N, Dv)


def test_registry_keys_are_the_names_users_write():
    assert list(PROJECTORS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_token_count(name):
    projector = small(name)
    out = projector(features())
    assert out.shape == (2, SMALL_TOKENS[name], DL)
    assert projector.num_visual_tokens == SMALL_TOKENS[name]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_wrong_feature_shape_is_refused_with_both_shapes(name):
    projector = small(name)
    with pytest.raises(ValueError, match=r"expects features \(B, 8, 16, 32\).*got \(2, 8, 9, 32\)"):
        projector(torch.randn(2, T, 9, DV))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter(name):
    projector = small(name)
    projector(features()).sum().backward()
    for pname, param in projector.named_parameters():
        assert param.grad is not None, f"{name}: {pname} got no gradient"
        assert param.grad.abs().sum() > 0, f"{name}: {pname} got a zero gradient"


@pytest.mark.parametrize(
    "name, args",
    [
        ("linear", {}),
        ("mlp2x_gelu", {}),
        ("perceiver", {"num_tokens": 16, "depth": 2, "heads": 4}),
        ("perceiver", {"num_tokens": 8, "depth": 1, "heads": 2, "hidden": 24, "frame_embeddings": False, "ff_mult": 2}),
        ("cabstractor", {"num_tokens": 16, "depth": 1}),
        ("cabstractor", {"num_tokens": 32, "depth": 2, "hidden": 40, "frame_embeddings": False, "mlp_depth": 1}),
        ("mixer", {"num_tokens": 16}),
        ("mixer", {"num_tokens": 8, "hidden": 24}),
    ],
)
def test_config_round_trip_rebuilds_the_same_module(name, args):
    torch.manual_seed(0)
    original = build_projector(name, DV, DL, T, N, **args)
    cfg = json.loads(json.dumps(original.config()))  # what a checkpoint's kvcap.json holds
    assert cfg["name"] == name and {"vision_dim", "llm_dim", "frames", "patches"} <= set(cfg)
    torch.manual_seed(123)  # different init: the weights must come from the state dict
    rebuilt = build_projector(**cfg)
    assert type(rebuilt) is type(original)
    assert rebuilt.config() == cfg
    before = {k: v.shape for k, v in original.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == before
    rebuilt.load_state_dict(original.state_dict())
    x = features()
    torch.testing.assert_close(rebuilt(x), original(x), rtol=0, atol=0)


def test_unknown_name_lists_all_valid_projectors():
    with pytest.raises(UnknownProjectorError) as info:
        build_projector("qformer", DV, DL, T, N)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'qformer'" in message and "\n" not in message
    for name in NAMES:
        assert name in message


def test_unknown_argument_is_named():
    with pytest.raises(ValueError, match=r"linear projector: unknown argument\(s\) heads"):
        build_projector("linear", DV, DL, T, N, heads=8)


def test_bad_values_are_refused_with_the_argument_name():
    with pytest.raises(ValueError, match=r"heads \(5\) must divide the width \(32\)"):
        build_projector("perceiver", DV, DL, T, N, heads=5)
    with pytest.raises(ValueError, match="frames must be a positive integer"):
        build_projector("linear", DV, DL, 0, N)
    with pytest.raises(ValueError, match=r"64 tokens per frame .* more than the 16 patches"):
        build_projector("cabstractor", DV, DL, T, N, num_tokens=512)


def test_cabstractor_rejects_a_non_square_patch_count():
    with pytest.raises(ValueError, match=r"square grid of patch tokens per frame, got 577 .*CLS"):
        build_projector("cabstractor", 1024, 4096, 8, 577)


@pytest.mark.parametrize("count, grid", [(8, (2, 4)), (16, (4, 4)), (7, (1, 7)), (12, (3, 4)), (1, (1, 1))])
def test_pooled_grid_is_the_most_square(count, grid):
    assert pooled_grid(count) == grid


def test_cabstractor_pools_each_frame_to_its_share_of_the_tokens():
    projector = build_projector("cabstractor", DV, DL, T, N, num_tokens=64, depth=1)  # 8 per frame
    assert projector.grid == (2, 4) and projector.num_visual_tokens == 64
    uneven = build_projector("cabstractor", DV, DL, 6, N, num_tokens=64, depth=1)  # 10 per frame
    assert uneven.grid == (2, 5) and uneven.num_visual_tokens == 60


def test_frame_embeddings_make_the_perceiver_see_frame_order():
    x = features(batch=1)
    swapped = x[:, [1, 0, 2, 3, 4, 5, 6, 7]]
    blind = small("perceiver", frame_embeddings=False)
    torch.testing.assert_close(blind(swapped), blind(x))  # a set of tokens: order is lost
    aware = small("perceiver")
    assert not torch.allclose(aware(swapped), aware(x), atol=1e-5)


def test_cabstractor_keeps_frames_in_order():
    """Token block f of the output depends on frame f only."""
    projector = small("cabstractor", frame_embeddings=False)
    x = features(batch=1)
    changed = x.clone()
    changed[:, 3] += 1.0
    out, out2 = projector(x), projector(changed)
    per_frame = SMALL_TOKENS["cabstractor"] // T
    differs = [(f, not torch.allclose(out[:, f * per_frame:(f + 1) * per_frame], out2[:, f * per_frame:(f + 1) * per_frame]))
               for f in range(T)]
    assert [f for f, d in differs if d] == [3]


def test_mixer_weights_belong_to_frames_and_places():
    """Each output token is a weighted sum over (frame, patch): the same change moves the output
    differently depending on which frame it happens in, and a token can be set to compare the
    same place in the first and last frame (zero when nothing changed, camera motion otherwise)."""
    projector = small("mixer")
    x = features(batch=1)
    early, late = x.clone(), x.clone()
    early[:, 0] += 1.0
    late[:, T - 1] += 1.0
    assert not torch.allclose(projector(early), projector(late), atol=1e-5)

    with torch.no_grad():
        weights = torch.zeros(16, T, N)
        weights[0, 0, 5], weights[0, T - 1, 5] = 1.0, -1.0  # token 0 = place 5, first minus last frame
        projector.mix.weight.copy_(weights.reshape(16, T * N))
    still = features(batch=1)[:, :1].expand(1, T, N, DV)  # the same frame 8 times
    mixed = projector.mix(projector.channels_in(still).reshape(1, T * N, -1).transpose(1, 2))  # (1, D, K)
    assert mixed[0, :, 0].abs().max() == 0
    moved = still.clone()
    moved[:, T - 1, 5] = still[:, 0, 6]  # place 5 shows what place 6 showed: the view shifted
    mixed = projector.mix(projector.channels_in(moved).reshape(1, T * N, -1).transpose(1, 2))
    assert mixed[0, :, 0].abs().max() > 0


# ---- parameter counts at real dimensions (meta device, nothing allocated) --------------------


def test_per_patch_projectors_match_their_formulas():
    dv, dl = REAL["vision_dim"], REAL["llm_dim"]
    assert count_projector("linear", **REAL) == (dv * dl + dl, 8 * 576)
    assert count_projector("mlp2x_gelu", **REAL) == (dv * dl + dl + dl * dl + dl, 8 * 576)
    assert count_projector("linear", **REAL)[0] == 4_198_400  # the seed's ~4.2M
    assert round(count_projector("mlp2x_gelu", **REAL)[0] / 1e6) == 21  # the seed's ~21M


def test_perceiver_defaults_land_in_the_seed_range():
    params, tokens = count_projector("perceiver", **REAL)
    assert 60e6 <= params <= 130e6 and tokens == 64


def test_perceiver_layer_costs_attention_plus_ffn():
    d = REAL["vision_dim"]
    # One layer: q, kv, out (4 d^2, no bias) + FFN x4 (8 d^2, no bias) + 3 LayerNorms (6 d).
    two = count_projector("perceiver", **REAL, depth=2)[0]
    three = count_projector("perceiver", **REAL, depth=3)[0]
    assert three - two == 12 * d * d + 6 * d


@pytest.mark.parametrize("depth", [None, 2, 6])
def test_cabstractor_lands_in_the_seed_range(depth):
    args = {} if depth is None else {"depth": depth}
    params, tokens = count_projector("cabstractor", **REAL, **args)
    assert 30e6 <= params <= 200e6 and tokens == 64


def test_mixer_matches_its_formula():
    dv, dl, positions = REAL["vision_dim"], REAL["llm_dim"], REAL["frames"] * REAL["patches"]
    # channel MLP in (Dv -> Dv) + mixing (T*N -> K, no bias) + LayerNorm + readout MLP (Dv -> Dl -> Dl)
    expected = (dv * dv + dv) + positions * 64 + 2 * dv + (dv * dl + dl) + (dl * dl + dl)
    assert count_projector("mixer", **REAL) == (expected, 64)
    assert count_projector("mixer", **REAL, num_tokens=128)[0] - expected == positions * 64


def test_counting_on_meta_matches_a_real_build():
    dims = dict(vision_dim=DV, llm_dim=DL, frames=T, patches=N)
    for name in NAMES:
        real = sum(p.numel() for p in small(name).parameters())
        assert count_projector(name, **dims, **SMALL_ARGS[name]) == (real, SMALL_TOKENS[name])


# ---- config -> constructor arguments ---------------------------------------------------------


def test_projector_kwargs_passes_only_what_each_projector_takes():
    cfg = ProjectorConfig(name="perceiver", num_tokens=32, depth=3, heads=4, hidden=512, frame_embeddings=False)
    assert projector_kwargs(cfg) == {"num_tokens": 32, "depth": 3, "heads": 4, "hidden": 512, "frame_embeddings": False}
    assert projector_kwargs(cfg, "cabstractor") == {"num_tokens": 32, "depth": 3, "hidden": 512, "frame_embeddings": False}
    assert projector_kwargs(cfg, "linear") == {}
    whole = Config()
    assert projector_kwargs(whole) == projector_kwargs(whole.projector) == {}  # default mlp2x_gelu
    # depth 0 leaves each projector's own default
    assert "depth" not in projector_kwargs(ProjectorConfig(name="perceiver", depth=0))
    with pytest.raises(UnknownProjectorError):
        projector_kwargs(cfg, "nope")


# ---- backbone dimensions ----------------------------------------------------------------------


def test_dims_from_the_built_in_table():
    assert vision_dims("openai/clip-vit-large-patch14-336") == (1024, 576)
    assert vision_dims("openai/clip-vit-large-patch14") == (1024, 256)
    sizes = {"0.6B": 1024, "1.7B": 2048, "4B": 2560, "8B": 4096, "14B": 5120, "32B": 5120}
    for size, hidden in sizes.items():
        assert llm_hidden(f"Qwen/Qwen3-{size}") == hidden


def test_dims_from_a_local_model_directory(tmp_path):
    clip = tmp_path / "clip"  # a full CLIP config: vision dims under vision_config
    clip.mkdir()
    (clip / "config.json").write_text(json.dumps({"model_type": "clip", "vision_config": {"hidden_size": 96, "image_size": 64, "patch_size": 16}}))
    vision = tmp_path / "vision"  # a bare CLIPVisionModel config
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"hidden_size": 64, "image_size": 56, "patch_size": 14}))
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"model_type": "qwen3", "hidden_size": 80}))
    assert vision_dims(str(clip)) == (96, 16)
    assert vision_dims(str(vision)) == (64, 16)
    assert llm_hidden(str(llm)) == 80


def test_dims_from_the_hugging_face_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    snapshot = tmp_path / "models--acme--vit" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"vision_config": {"hidden_size": 48, "image_size": 32, "patch_size": 8}}))
    (tmp_path / "models--acme--vit" / "refs").mkdir()
    (tmp_path / "models--acme--vit" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert vision_dims("acme/vit") == (48, 16)


def test_dims_errors_are_one_line_and_name_the_file_or_flag(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    from kvcap.model.backbone import ModelConfigError  # config.json's one reader (kvcap.model.backbone)

    with pytest.raises(ModelConfigError, match=re.escape(str(bad / "config.json"))):
        llm_hidden(str(bad))
    nokey = tmp_path / "nokey"
    nokey.mkdir()
    (nokey / "config.json").write_text(json.dumps({"model_type": "x"}))
    with pytest.raises(DimsError, match="hidden_size: expected a positive integer"):
        llm_hidden(str(nokey))
    with pytest.raises(DimsError, match="pass --llm-dim") as info:
        llm_hidden("acme/unknown-llm")
    assert "\n" not in str(info.value)
    with pytest.raises(DimsError, match="pass --vision-dim and --patches"):
        vision_dims("acme/unknown-vit")


def test_dims_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, kvcap.model.dims as d; d.llm_hidden('Qwen/Qwen3-8B'); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# ---- `kvcap projectors` -----------------------------------------------------------------------


def rows(output: str) -> dict[str, list[str]]:
    """Table rows by projector name: the cells of the row's first line."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0].rstrip(" *") in NAMES:
            found[cells[0].rstrip(" *")] = cells
    return found


def number(cell: str) -> int:
    return int(cell.split()[0].replace(",", ""))


def test_cli_reproduces_the_seed_table_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no kvcap.toml here: the built-in defaults
    result = CliRunner().invoke(main, ["projectors", "--frames", "8"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert set(table) == set(NAMES)
    assert number(table["linear"][1]) == 4_198_400 and number(table["linear"][2]) == 4_608
    assert number(table["mlp2x_gelu"][1]) == 20_979_712 and number(table["mlp2x_gelu"][2]) == 4_608
    assert 30e6 <= number(table["cabstractor"][1]) <= 200e6 and number(table["cabstractor"][2]) == 64
    assert number(table["perceiver"][2]) == 64
    assert number(table["mixer"][2]) == 64
    # The perceiver row is built from the config's settings, whatever they are.
    expected = count_projector("perceiver", **REAL, **projector_kwargs(Config().projector, "perceiver"))[0]
    assert number(table["perceiver"][1]) == expected
    assert "4.2M" in table["linear"][1] and "21.0M" in table["mlp2x_gelu"][1]


def test_cli_perceiver_at_flamingo_depth_is_in_the_seed_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["projectors", "--set", "projector.depth=6"])
    assert result.exit_code == 0, result.output
    perceiver = rows(result.output)["perceiver"]
    assert 60e6 <= number(perceiver[1]) <= 130e6 and number(perceiver[2]) == 64


def test_cli_with_explicit_dimensions_and_unknown_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["projectors", "--set", "model.vision=acme/unknown-vit", "--set", "model.llm=acme/unknown-llm"]
    result = CliRunner().invoke(main, base + ["--vision-dim", "32", "--patches", "16", "--llm-dim", "48", "--frames", "4"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    dims = dict(vision_dim=32, llm_dim=48, frames=4, patches=16)
    for name in NAMES:
        params, tokens = count_projector(name, **dims, **projector_kwargs(Config().projector, name))
        assert (number(table[name][1]), number(table[name][2])) == (params, tokens), name
    missing = CliRunner().invoke(main, base + ["--vision-dim", "32", "--patches", "16"])
    assert missing.exit_code == 2
    assert "acme/unknown-llm" in missing.output and "--llm-dim" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_cli_reports_a_kept_cls_token_for_the_cabstractor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["projectors", "--set", "model.vision_cls=keep"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert number(table["linear"][2]) == 8 * 577
    assert table["cabstractor"][1] == "-" and table["cabstractor"][2] == "-"
    assert "square" in result.output and "577" in result.output


def test_dims_of_a_tiny_model_come_from_its_written_config(tmp_path, monkeypatch):
    from kvcap.model.tiny import TINY_VERSION

    monkeypatch.setenv("KVCAP_HOME", str(tmp_path))
    written = tmp_path / "tiny" / f"clip-{TINY_VERSION}"  # as if written by an earlier use
    written.mkdir(parents=True)
    (written / "config.json").write_text(json.dumps({"hidden_size": 40, "image_size": 48, "patch_size": 16}))
    assert vision_dims("tiny:clip") == (40, 9)
