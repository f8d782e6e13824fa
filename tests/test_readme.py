"""The README is true where it is code: its first command and its emulator snippet work as pasted."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pulumi_ucloud_images._cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.slow
def test_the_first_command_prints_one_image_id(tmp_path: Path) -> None:
    """The README's first command, past its install: the lookup it runs against the bundled emulator."""
    block = re.search(r"```sh\n(.*?)\n", README.read_text(encoding="utf-8"))
    assert block is not None, "the README has no sh block"
    first = block.group(1)
    command = first.rsplit(" && ", 1)[1]
    assert command.startswith(".venv/bin/ucloud-images find --emulator ")
    args = shlex.split(command)[1:]
    script = Path(sys.executable).with_name("ucloud-images")
    done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr) == (0, "")
    assert re.fullmatch(r"uimage-[0-9a-z]+\n", done.stdout)


def test_the_readme_says_which_flag_of_the_first_command_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --architecture it is ambiguous (exit 4); without --image-type base it finds the same image."""
    text = README.read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n", text)
    assert first is not None
    args = shlex.split(first.group(1).rsplit(" && ", 1)[1])[1:]  # find --emulator ...
    assert main(args) == 0
    found = capsys.readouterr().out
    without_type = [arg for arg in args if arg not in ("--image-type", "base")]
    assert len(without_type) == len(args) - 2
    assert main(without_type) == 0 and capsys.readouterr().out == found
    at = args.index("--architecture")
    assert main(args[:at] + args[at + 2:]) == 4
    assert "Without `--architecture x86_64`, the first command is refused (exit 4)" in text
    assert "It does not need\n`--image-type base`" in text


@pytest.mark.slow
def test_the_emulator_snippet_runs_as_pasted(tmp_path: Path) -> None:
    snippet = next(block for block in _python_blocks() if "with Emulator() as emulator:" in block)
    assert "from pulumi_ucloud_images._" not in snippet  # a public import only
    # In a fresh interpreter, with nothing imported or set up beforehand: exactly what a reader pastes.
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "uimage-f1chxn\n"


def test_malformed_profile_files_are_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README's exit-code table says: exit 2 for a profile file that is not JSON or has two active
    profiles, even with every setting given elsewhere."""
    folder = Path.home() / ".ucloud"
    folder.mkdir()
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", "pk")
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "sk")
    monkeypatch.setenv("UCLOUD_REGION", "cn-bj2")
    for content in ("{broken", json.dumps([{"profile": "a", "active": True}, {"profile": "b", "active": True}])):
        (folder / "config.json").write_text(content, encoding="utf-8")
        assert main(["find", "--name-regex", "x"]) == 2
    capsys.readouterr()



def test_no_page_tells_users_to_install_from_pypi() -> None:
    """The package is not on PyPI: installing is from a clone or a git URL until a release exists."""
    root = README.parent
    documents = [README, *root.glob("docs/*.md"), *root.glob("examples/**/*.md"), *root.glob("examples/**/*.sh"),
                 *root.glob("examples/**/requirements.txt")]
    for path in documents:
        content = path.read_text(encoding="utf-8")
        assert "pip install pulumi-ucloud-images" not in content, path
        assert not re.search(r"^pulumi-ucloud-images\s*$", content, flags=re.MULTILINE), path


def test_a_missing_region_is_bad_input_whether_or_not_keys_are_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("UCLOUD_REGION", "UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["find", "--name-regex", "x"]) == 2
    assert main(["find", "--name-regex", "x", "--public-key", "pk", "--private-key", "sk"]) == 2
    assert main(["find", "--name-regex", "x", "--region", "cn-bj2"]) == 5
    capsys.readouterr()
