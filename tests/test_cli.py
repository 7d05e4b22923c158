"""The `clapsearch` command as a whole: version, help texts, fast argument errors."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from clapsearch.cli import app

runner = CliRunner()

COMMANDS = [[], ["index"], ["query"], ["classify"], ["embed"], ["status"], ["eval", "retrieval"]]


def test_version():
    from clapsearch import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"clapsearch {__version__}"


def test_help_paragraphs_are_reflowed_not_broken_where_the_source_wraps():
    """A docstring paragraph wrapped at 100 columns in the source must come out as one
    paragraph filled to the terminal width: at 2000 columns, on one line."""
    import inspect

    from typer.main import get_command

    group = get_command(app)
    for path in COMMANDS[1:]:
        cmd = group
        for name in path:
            cmd = cmd.commands[name]
        doc = inspect.cleandoc(cmd.callback.__doc__ or "")
        paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "2000"}, terminal_width=2000)
        assert result.exit_code == 0, result.output
        flat = [" ".join(line.split()) for line in result.stdout.splitlines()]
        for para in paragraphs:
            words = para.replace("`", "").split()
            first = " ".join(words[:6])
            line = next((ln for ln in flat if first in ln), None)
            assert line is not None and " ".join(words[-3:]) in line, (path, para)


def test_bad_arguments_fail_before_any_model_or_index_is_touched(tmp_path):
    """`-k 0` and an empty query are refused without importing torch (a fast error)."""
    from conftest import run_cli_process

    for args in (["query", "dog", "-k", "0"], ["query", "  "]):
        code, _, err, torch_loaded = run_cli_process(*args, "--index", str(tmp_path / "none"))
        assert code == 2 and not torch_loaded, err
        assert err.startswith("error: ") and "Traceback" not in err


def test_audio_query_that_is_not_audio_fails_before_the_model_loads(tmp_path):
    """`query --audio` with a lying header, a FIFO or a cut FLAC: the file's own sentence,
    without importing torch (it once took the model's load time, 5 s, to say so)."""
    from conftest import esc50_files, run_cli_process

    from tests import faults, hostile

    idx = tmp_path / "idx"
    faults.synthetic_index(idx, n_files=3)
    bad = {
        "not an audio file": hostile.lying_rate_wav(tmp_path / "liar.wav"),
        "truncated or corrupt": hostile.lying_length_flac(tmp_path / "cut.flac", esc50_files(1)[0]),
        "named pipe": hostile.fifo(tmp_path / "pipe.wav"),
    }
    for sentence, path in bad.items():
        code, _, err, torch_loaded = run_cli_process(
            "query", "--audio", str(path), "--index", str(idx)
        )
        assert code == 1 and not torch_loaded, err
        assert err.startswith("error: ") and sentence in err and "Traceback" not in err


def test_every_command_is_loaded_by_its_name_alone():
    """`main()` imports only the modules of the command it runs (`COMMAND_MODULES`): each
    registered command must be listed, and loading its modules alone must register it."""
    from typer.main import get_command

    from clapsearch.cli import COMMAND_MODULES

    registered = set(get_command(app).commands)
    assert registered == set(COMMAND_MODULES)
    code = (
        "import sys\n"
        "from typer.main import get_command\n"
        "from clapsearch.cli import app, load_commands\n"
        "load_commands([sys.argv[1], '--help'])\n"
        "group = get_command(app)\n"
        "print(sys.argv[1] in group.commands, 'clapsearch.cli.serve' in sys.modules)\n"
    )
    for name in sorted(registered):
        proc = subprocess.run(
            [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["True", str(name == "serve")], name
