"""Shared fixtures live in tests/fixtures/<area>.py, one module per area."""

import os
import tempfile

# Tests build tiny models from configs; nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# kvcap's cache root (tiny backbones, token cache): a fresh one per test session, never the
# user's ~/.cache/kvcap, so every run starts from the state a clean machine has.
os.environ["KVCAP_HOME"] = tempfile.mkdtemp(prefix="kvcap-test-home-")

import kvcap  # noqa: E402,F401  (sets OMP_WAIT_POLICY before any test imports torch)

pytest_plugins = ["fixtures.video", "fixtures.data", "fixtures.model", "fixtures.ray"]


# --- markers from declared lists (issue 14) ---------------------------------------------------
# `torch`: the module needs torch (or the model stack). `make test-compat` runs everything else
# on Python 3.10-3.13 in environments without torch, with -m "not torch and not snapshot"; a
# module that imports torch and is missing here fails there loudly, never skipped, so a torch
# import that creeps into a torch-free path (probe, score meteor, the TUI) is caught. A module
# may also mark itself with `pytestmark = pytest.mark.torch`.
# `snapshot`: Textual SVG snapshots; they move with Textual releases, so they run on the main
# job's pinned Textual only.
TORCH_TESTS = (  # a folder/, a module, or module::test
    "model/",
    "train/",
    "data/test_cache.py",
    "metrics/test_metrics_siglip.py",
    "test_demo.py",
    "test_readme_python.py::test_readme_python_snippets_run_as_written",
    "test_bench_demo_ablation.py",
    "test_bench_gpu.py::test_tiny_run_passes_every_section",
    "test_bench_gpu.py::test_tiny_run_prints_a_table_per_section_and_the_headline_last",
    "test_bench_gpu.py::test_tiny_run_measures_what_the_issue_asks",
    "test_bench_gpu.py::test_tiny_run_appends_its_row_under_the_gpu_heading",
    "test_bench_gpu.py::test_a_spent_budget_skips_every_section_but_still_writes_results",
    "caption/test_caption_cli.py::test_caption_mixed_folder_end_to_end",
    "caption/test_subtitles_demo.py",
    "caption/test_caption_cli.py::test_all_good_exits_zero_and_config_supplies_the_checkpoint",
    "caption/test_caption_cli.py::test_quantization_flag_loads_the_llm_as_asked",
    "caption/test_caption_cli.py::test_bad_checkpoint_is_a_one_line_error",
    "caption/test_caption_cli.py::test_cli_shards_and_merge",
    "caption/test_caption_cli.py::test_ctrl_c_stops_after_the_batch_and_says_how_to_resume",
    "metrics/test_metrics_cli.py::test_unavailable_siglip_is_a_clear_message_not_a_traceback",
    # they load a model (the demo checkpoint, tiny backbones) or import the torch-side registry
    "caption/test_autotune.py::test_the_probe_runs_a_real_batch_through_the_static_loop",
    "caption/test_session.py",
    "caption/test_caption_confidence.py::test_records_and_segments_carry_confidence_and_the_suspect_reason",
    "caption/test_caption_confidence.py::test_thresholds_come_from_the_options_and_a_confident_caption_is_not_suspect",
    "cli/test_error_mapping.py::test_former_wrappers_that_load_torch_are_one_line",
    "cli/test_error_mapping.py::test_a_locked_job_is_one_line",
    "caption/test_caption_cli.py::test_first_line_says_what_auto_chose_and_why",
    "caption/test_caption_messages.py::test_frames_other_than_the_checkpoints_is_refused_up_front",
    "caption/test_caption_messages.py::test_one_video_and_files_that_are_not_videos",
    "cli/test_exit_codes.py::test_errors_in_a_real_process_are_one_line",
    "cli/test_quiet_output.py::test_caption_stderr_has_no_library_noise",
    "cli/test_no_hub.py",
    "cli/test_launch.py::test_accelerate_cpu_launch_of_two_processes_says_it_started_one",
    "cli/test_unwritable_outputs.py::test_caption_check_leaves_no_folder_behind",
    "cli/test_unwritable_outputs.py::test_caption_into_an_unwritable_folder",
    "cli/test_unwritable_outputs.py::test_caption_output_naming_a_file_or_under_a_file",
    "cli/test_unwritable_outputs.py::test_demo_out_in_an_immutable_folder",
    "data/test_aihub_zip.py::test_cli_summary_counts_tokens_with_the_llm_tokenizer",
    "test_bench_gpu.py::test_tiny_run_captions_end_to_end_through_the_cli",
    "test_bench_loops.py::test_forced_loops_are_marked_and_normal_captions_are_not",
    "test_config.py::test_caption_quantization_sentinel_in_one_place",
    "test_config.py::test_projector_names_match_the_registry",
    "caption/test_caption_stdout.py",
    "caption/test_checkpoint_settings.py",
    "data/test_aihub_train_caption.py",
    "test_bench_startup.py",
    "test_demo_settings.py",
    "test_kvcap_errors.py",
    "review/test_review_cli.py::test_caption_review_writes_the_page_at_the_end",
)
SNAPSHOT_TESTS = ("tui/test_snapshots.py",)
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _in(path, listed, name: str | None = None) -> bool:
    """Whether a module (name None) or one test in it is listed, itself or by its folder."""
    rel = os.path.relpath(str(path), _TESTS_DIR).replace(os.sep, "/")
    keys = {rel} if name is None else {rel, f"{rel}::{name}"}
    return any(entry in keys or (entry.endswith("/") and rel.startswith(entry)) for entry in listed)


def _deselects_torch(config) -> bool:
    return "not torch" in (config.getoption("markexpr", "") or "")


def pytest_ignore_collect(collection_path, config):
    """Don't even import the declared torch modules when the run deselects them."""
    if _deselects_torch(config) and _in(collection_path, TORCH_TESTS):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if _in(item.path, TORCH_TESTS, getattr(item, "originalname", item.name)):
            item.add_marker(pytest.mark.torch)
        if _in(item.path, SNAPSHOT_TESTS):
            item.add_marker(pytest.mark.snapshot)
