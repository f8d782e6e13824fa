"""The ``ucloud-images`` command: stdout carries only the answer, errors are one sentence, exit codes 0/2/3/4/5.

Most tests call ``main()`` in-process against the bundled catalogue (fixed facts: ``uimage-f1chxn`` is the
only "CentOS 7.2 64位", past its end of life; seven Available Base images are named "Ubuntu 22.04 ...", on
both architectures, the newest x86_64 one ``uimage-ub2205``, and two newer marketplace ones); a few run the
installed console script as a real subprocess.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from pulumi_ucloud_images import RetryPolicy
from pulumi_ucloud_images._api import client as _listing
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

SCRIPT = Path(sys.executable).with_name("ucloud-images")
CENTOS_72 = ["--name-regex", r"^CentOS 7\.2 64位$"]
UBUNTU_2204 = ["--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04"]
X86 = ["--architecture", "x86_64"]


@pytest.fixture
def account(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The UCLOUD_* environment of a user whose account is the emulator."""
    monkeypatch.setenv("UCLOUD_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    monkeypatch.setenv("UCLOUD_REGION", "cn-bj2")
    return emulator


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_eol_warning(err: str, image_id: str = "uimage-f1chxn", eol: str = "2024/06/30") -> None:
    """stderr is one warning: the chosen image is past its end of life, named with its EOL date."""
    assert err.count("\n") == 1 and err.startswith(f"warning: image {image_id} "), err
    assert f"past its end of life ({eol}," in err and "--exclude-eol" in err


def assert_one_sentence_error(err: str) -> str:
    """The first stderr line is ``ucloud-images: error: <one sentence>``; no traceback anywhere."""
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("ucloud-images: error: ")
    sentence = first.removeprefix("ucloud-images: error: ")
    assert not sentence[0].islower() and sentence.endswith(".")
    return sentence


# -- find -------------------------------------------------------------------------------------------


def test_find_prints_only_the_image_id(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "find", *CENTOS_72)
    assert (code, out) == (0, "uimage-f1chxn\n")
    assert_eol_warning(err)  # CentOS 7.2 is past its end of life: chosen, with a warning on stderr only


def test_find_most_recent(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    assert run(capsys, "find", *UBUNTU_2204, *X86, "--most-recent") == (0, "uimage-ub2205\n", "")


def test_find_with_every_filter_flag(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(
        capsys, "find", "--region", "cn-bj2", "--zone", "cn-bj2-05", "--project-id", "org-platform",
        "--image-type", "BASE", "--os-type", "Linux", "--func-type", "uhost", "--id", "uimage-ub2205",
        "--id", "uimage-ub22a5", "--name-regex", "^Ubuntu", "--os-name-regex", "22", "--feature", "cloudinit",
        "--feature", "NetEnhnced", "--architecture", "x86_64", "--state", "available", "--state", "making",
    )
    assert (code, out, err) == (0, "uimage-ub2205\n", "")
    sent = account.requests[-1].params
    assert {key: sent[key] for key in ("Zone", "ProjectId", "ImageType", "OsType", "FuncType", "ImageIds.0")} == {
        "Zone": "cn-bj2-05", "ProjectId": "org-platform", "ImageType": "Base", "OsType": "Linux",
        "FuncType": "uhost", "ImageIds.0": "uimage-ub2205",
    }


def test_find_output_json_is_the_full_record(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "find", *CENTOS_72, "--output", "json")
    assert code == 0
    assert_eol_warning(err)
    assert "CentOS 7.2 64位" in out  # not \u-escaped
    data = json.loads(out)
    assert data["imageId"] == "uimage-f1chxn" and data["ids"] == ["uimage-f1chxn"] and data["totalCount"] == 1
    assert data["region"] == "cn-bj2"
    assert data["image"]["imageName"] == "CentOS 7.2 64位"
    assert data["image"]["features"] == ["NetEnhanced", "HotPlug"]
    assert data["image"]["zone"] == "cn-bj2-02"
    assert (data["image"]["maintainEol"], data["image"]["eolDate"]) == ("2024/06/30", "2024-06-30")
    assert data["image"]["architecture"] == "x86_64"
    assert data["warnings"] == [err.removeprefix("warning: ").rstrip("\n")]


def test_find_with_the_emulator_needs_no_account(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "find", "--emulator", *UBUNTU_2204, *X86, "--most-recent") == (0, "uimage-ub2205\n", "")


def test_find_with_the_emulator_ignores_the_users_real_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UCLOUD_PROJECT_ID", "org-real")
    monkeypatch.setenv("UCLOUD_API_BASE_URL", "https://api.ucloud.cn")
    monkeypatch.setenv("UCLOUD_SHARED_CONFIG_FILE", "/nonexistent/config.json")
    (Path.home() / ".ucloud").mkdir()
    (Path.home() / ".ucloud" / "credential.json").write_text("{broken", encoding="utf-8")
    code, out, err = run(capsys, "find", "--emulator", *CENTOS_72, "--timeout", "5")
    assert (code, out) == (0, "uimage-f1chxn\n")
    assert_eol_warning(err)


# -- list -------------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table_newest_first(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "list", "--name-regex", r"^Ubuntu 22\.04 64位$", "--state", "available",
                         "--state", "making", "--wide")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["IMAGE", "ID", "NAME", "TYPE", "OS", "ARCH", "STATE", "ZONE", "CREATED", "(UTC)",
                                "EOL", "VENDOR", "FEATURES"]
    assert [line.split()[0] for line in lines[1:]] == [
        "uimage-ub22mk", "uimage-ub22a6", "uimage-ub2205", "uimage-ub22a5", "uimage-ub2204", "uimage-ub2203",
        "uimage-ub2202",
    ]
    # Columns line up on screen: the wide CJK character 位 takes two cells, so TYPE starts at the same cell.
    def cells(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)

    type_cell = cells(lines[0][: lines[0].index("TYPE")])
    assert {cells(line[: line.index("  Base  ") + 2]) for line in lines[1:]} == {type_cell}
    assert "aarch64" in lines[4] and "Making" in lines[1] and "2027-04-30" in lines[1]


def test_list_quotes_names_with_stray_spaces(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, _ = run(capsys, "list", "--region", "hk", "--name-regex", r"^ CentOS 7\.6")
    assert code == 0
    assert "uimage-i3xo3q  ' CentOS 7.6 64位'  Base" in out
    code, out, _ = run(capsys, "list", "--name-regex", "^Rocky 9.4 64位 $")
    assert code == 0
    assert "'Rocky 9.4 64位 '" in out


def test_list_output_json(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "list", *UBUNTU_2204, "--output", "json")
    assert (code, err) == (0, "")
    records = json.loads(out)
    assert [record["imageId"] for record in records][:3] == ["uimage-ub22a6", "uimage-ub2205", "uimage-ub22a5"]
    assert len(records) == 7
    assert all(record["state"] == "Available" and record["imageType"] == "Base" for record in records)
    times = [record["createTime"] for record in records]
    assert times == sorted(times, reverse=True)


def test_list_with_no_match_exits_3(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "list", "--name-regex", "^Plan 9")
    assert (code, out) == (3, "")
    assert assert_one_sentence_error(err).startswith("No image in region cn-bj2 matches --name-regex='^Plan 9'")
    code, out, err = run(capsys, "list", "--name-regex", "^Plan 9", "--output", "json")
    assert (code, json.loads(out)) == (3, [])


# -- exit codes and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["--os-type", "macos"], "Invalid --os-type 'macos': must be one of Linux, Windows."),
        (["--image-type", "golden"], "Invalid --image-type 'golden': must be one of Base, Business, Custom."),
        (["--func-type", "fpga"], "Invalid --func-type 'fpga': must be one of gpu, app, uhost."),
        (["--architecture", "ppc64"], "Invalid --architecture 'ppc64': must be one of x86_64, aarch64."),
        (["--state", "Gone"], "Invalid --state entry 'Gone': must be one of Available, Making, Unavailable, Copying."),
        (["--feature", "Turbo"], "Invalid --feature entry 'Turbo': must be one of NetEnhanced, NetEnhanced_Ultra, "
                                 "NetEnhanced_Extreme, HotPlug, GPU, CloudInit, IPv6, RssdAttachable, Vgpu_AMD, "
                                 "Vgpu_NVIDIA, Aarch64_Type."),
        (["--name-regex", "(CentOS"], "Invalid --name-regex '(CentOS': not a valid regular expression: missing ), "
                                      "unterminated subpattern at position 0."),
        (["--os-name-regex", "a{2,1}"], "Invalid --os-name-regex 'a{2,1}': not a valid regular expression: min "
                                        "repeat greater than max repeat at position 2."),
        (
            ["--timeout", "0"],
            "Invalid --timeout: must be a positive, finite number of seconds (the value given is not shown).",
        ),
        (
            ["--base-url", "api.ucloud.cn"],
            "Invalid --base-url: must be an http:// or https:// URL (the value given is not shown).",
        ),
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_no_request(
    capsys: pytest.CaptureFixture[str], account: Emulator, argv: list[str], sentence: str
) -> None:
    for command in ("find", "list"):
        code, out, err = run(capsys, command, *argv)
        assert (code, out) == (2, "")
        assert assert_one_sentence_error(err) == sentence
        assert err.count("\n") == 1
    assert account.request_count == 0


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["find", "--colour", "red"], "Unrecognized flags: --colour (their values are not shown)."),
        (["find", "--output", "xml"], "Argument --output must be one of id, json (the value given is not shown)."),
        (["find", "--timeout", "soon"],
         "Argument --timeout must be a number of seconds (the value given is not shown)."),
        (
            ["frobnicate"],
            "Unknown command (not shown); the commands are find, list, emulator, lock, promote, rollback, revoke, "
            "restore, deprecate, history, audit.",
        ),
        ([], "The following arguments are required: COMMAND."),
        (["emulator", "--port", "70000"],
         "Argument --port must be a whole number between 0 and 65535 (the value given is not shown)."),
        (["emulator", "--fault-rate", "2"], "Argument --fault-rate must be a number between 0 and 1 (the value given"),
        (["emulator", "--max-limit", "0"], "Argument --max-limit must be a whole number of at least 1 (the value"),
        (["emulator", "--latency-ms", "fast"], "Argument --latency-ms must be a number between 0 and 60000 (the"),
    ],
)
def test_usage_errors_exit_2_with_one_sentence_then_a_hint(
    capsys: pytest.CaptureFixture[str], argv: list[str], sentence: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert assert_one_sentence_error(err).startswith(sentence)
    assert err.splitlines()[1].startswith("Run 'ucloud-images")


def test_a_missing_region_exits_2_naming_every_place_looked(
    capsys: pytest.CaptureFixture[str], account: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCLOUD_REGION")
    code, out, err = run(capsys, "find", *CENTOS_72)
    assert (code, out) == (2, "")
    sentence = assert_one_sentence_error(err)
    assert sentence == ("No UCloud region was given; looked at --region, the environment variable UCLOUD_REGION and "
                        "the UCloud CLI's ~/.ucloud/config.json (no such file).")


def test_missing_keys_exit_5(capsys: pytest.CaptureFixture[str], emulator: Emulator) -> None:
    code, out, err = run(capsys, "find", "--region", "cn-bj2", "--base-url", emulator.base_url, *CENTOS_72)
    assert (code, out) == (5, "")
    assert assert_one_sentence_error(err).startswith("No UCloud public key was found; looked at ")
    assert emulator.request_count == 0


def test_the_emulator_switch_refuses_flags_it_would_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "find", "--emulator", "--base-url", "https://api.ucloud.cn", "--public-key", "pk")
    assert (code, out) == (2, "")
    assert assert_one_sentence_error(err) == (
        "The --emulator switch brings its own endpoint and keys, so --base-url and --public-key cannot be used "
        "with it."
    )


def test_no_match_exits_3(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "find", "--name-regex", "^Plan 9", "--os-type", "linux")
    assert (code, out) == (3, "")
    assert assert_one_sentence_error(err).startswith(
        "No image in region cn-bj2 matches --os-type='Linux', --name-regex='^Plan 9', --state=[Available]: "
    )


def test_ambiguity_exits_4_listing_the_candidates(capsys: pytest.CaptureFixture[str], account: Emulator) -> None:
    code, out, err = run(capsys, "find", *UBUNTU_2204)
    assert (code, out) == (4, "")
    sentence = assert_one_sentence_error(err)
    assert sentence.startswith("7 images in region cn-bj2 match --os-type='Linux', --name-regex='^Ubuntu 22\\.04', ")
    assert "uimage-ub2205 'Ubuntu 22.04 64位' created 2026-01-20 02:45 UTC" in sentence
    assert sentence.endswith("Set --most-recent to take the newest, or tighten the filters.")


def test_wrong_keys_exit_5_with_retcode_message_action_and_request_id(
    capsys: pytest.CaptureFixture[str], account: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "wrong-private-key")
    code, out, err = run(capsys, "find", *CENTOS_72)
    assert (code, out) == (5, "")
    request_id = account.requests[-1].request_id
    assert assert_one_sentence_error(err) == (
        f"UCloud API DescribeImage failed with RetCode 171: Signature verification failed (request id {request_id}); "
        "check that the private key belongs to the public key (the public key came from the environment variable "
        "UCLOUD_PUBLIC_KEY, the private key from the environment variable UCLOUD_PRIVATE_KEY)."
    )
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", "nobody")
    code, _, err = run(capsys, "find", *CENTOS_72)
    assert code == 5
    assert "RetCode 172" in assert_one_sentence_error(err)


@pytest.mark.parametrize("kind", ["malformed", "no_retcode", "bad_shape"])
def test_a_server_answering_nonsense_exits_5(
    capsys: pytest.CaptureFixture[str], account: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setattr(_listing, "RetryPolicy", functools.partial(RetryPolicy, sleep=lambda seconds: None))
    account.inject(kind, times=20)
    code, out, err = run(capsys, "find", *CENTOS_72)
    assert (code, out) == (5, "")
    assert assert_one_sentence_error(err).startswith("UCloud API DescribeImage answered ")
    assert f"request id {account.requests[-1].request_id}" in err


def test_an_unreachable_endpoint_exits_5(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The default retry policy really sleeps (about 5 s in all here); the test keeps its attempts, not its pauses.
    monkeypatch.setattr(_listing, "RetryPolicy", functools.partial(RetryPolicy, sleep=lambda seconds: None))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, out, err = run(capsys, "find", "--region", "cn-bj2", "--public-key", "pk", "--private-key", "sk",
                         "--base-url", url, "--timeout", "2", *CENTOS_72)
    assert (code, out) == (5, "")
    sentence = assert_one_sentence_error(err)
    assert sentence.startswith(f"UCloud API DescribeImage at {url} could not be reached")


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "find", "--help")
    assert code == 0
    for flag in ("--region", "--zone", "--project-id", "--image-type", "--os-type", "--func-type", "--image-id",
                 "--id", "--name-regex", "--os-name-regex", "--feature", "--architecture", "--state",
                 "--most-recent", "--profile", "--base-url", "--public-key", "--private-key", "--timeout",
                 "--emulator", "--output"):
        assert re.search(rf"^\s+{flag}\b", out, re.MULTILINE), flag
    code, out, _ = run(capsys, "--version")
    assert code == 0 and re.fullmatch(r"ucloud-images \d+\.\d+\.\d+\S*\n", out)


def test_extra_commands_register_their_own_handler(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert re.search(r"^\s+lock\b", out, re.MULTILINE)


# -- the emulator command -------------------------------------------------------------------------------


def test_emulator_command_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "emulator", "--public-key", "pk")
    assert code == 2
    assert assert_one_sentence_error(err) == (
        "Give --public-key and --private-key together, or neither for the demo pair."
    )
    code, _, err = run(capsys, "emulator", "--port", "0", "--catalog", str(tmp_path / "missing.json"))
    assert code == 2
    assert assert_one_sentence_error(err).startswith(f"Catalogue file {tmp_path / 'missing.json'} cannot be read")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "emulator", "--port", str(port))
    assert code == 5
    assert assert_one_sentence_error(err) == f"The emulator cannot serve on 127.0.0.1:{port}: Address already in use."


# -- real subprocesses ---------------------------------------------------------------------------------


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UCLOUD_", "PULUMI_CONFIG"))}
    return {**env, "HOME": str(tmp_path), "PYTHONIOENCODING": "utf-8"}


@pytest.mark.slow
def test_the_console_script_finds_an_image_offline(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"the console script is installed next to {sys.executable}"
    env = _clean_env(tmp_path)
    done = subprocess.run([str(SCRIPT), "find", "--emulator", *CENTOS_72], capture_output=True, text=True,
                          env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "uimage-f1chxn\n")
    assert done.stderr.startswith("warning: image uimage-f1chxn ") and "(2024/06/30, before " in done.stderr
    done = subprocess.run([str(SCRIPT), "find", "--emulator", *UBUNTU_2204], capture_output=True, text=True,
                          env=env, timeout=60)
    assert (done.returncode, done.stdout) == (4, "")
    assert_one_sentence_error(done.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["find", "--help"], ["find", "--emulator", *CENTOS_72]])
def test_the_command_imports_neither_pulumi_nor_grpc(tmp_path: Path, argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), *argv], capture_output=True, text=True,
                          env=_clean_env(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pulumi_ucloud_images._cli" in imported  # the measurement saw the command's own imports
    heavy = sorted(name for name in imported if name.split(".")[0] in ("pulumi", "grpc", "google"))
    assert heavy == []


@pytest.mark.slow
@pytest.mark.parametrize("argv", [[command, "--help"] for command in (
    "find", "list", "emulator", "lock", "promote", "rollback", "revoke", "restore", "deprecate", "history", "audit",
)] + [["--help"], ["find", "--no-such-flag"]])
def test_help_and_usage_errors_load_neither_requests_nor_the_lockfile_models(tmp_path: Path, argv: list[str]) -> None:
    """Building the parser registers every command's flags; the client, the lockfile's models and the policy
    rules are imported inside the handlers, so ``--help`` starts without them (about 0.1 s less)."""
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), *argv], capture_output=True, text=True,
                          env=_clean_env(tmp_path), timeout=60)
    assert done.returncode == (2 if "--no-such-flag" in argv else 0), done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pulumi_ucloud_images._cli" in imported  # the measurement saw the command's own imports
    heavy = {"requests", "urllib3", "pulumi_ucloud_images._api.client", "pulumi_ucloud_images._lockfile.lockfile",
             "pulumi_ucloud_images._policy.rules", "pulumi_ucloud_images._lookup", "pulumi_ucloud_images._select"}
    assert sorted(heavy & imported) == []


@pytest.mark.slow
def test_the_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    server = subprocess.Popen([str(SCRIPT), "emulator", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_clean_env(tmp_path))
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        match = re.search(r"serving (\d+) images at (http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        base_url = match.group(2)
        hint = server.stdout.readline()
        assert f"UCLOUD_API_BASE_URL={base_url}" in hint
        done = subprocess.run(
            [str(SCRIPT), "find", "--base-url", base_url, "--region", "cn-bj2", *CENTOS_72],
            capture_output=True, text=True, timeout=60,
            env={**_clean_env(tmp_path), "UCLOUD_PUBLIC_KEY": DEMO_PUBLIC_KEY, "UCLOUD_PRIVATE_KEY": DEMO_PRIVATE_KEY},
        )
        assert (done.returncode, done.stdout) == (0, "uimage-f1chxn\n"), done.stderr
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
        assert "Traceback" not in (server.stderr.read() if server.stderr else "")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``ucloud-images list ... | head -1``: no traceback when the pipe closes early."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the command writes anything
    try:
        done = subprocess.run([str(SCRIPT), "list", "--emulator", "--output", "json"], stdout=writer,
                              stderr=subprocess.PIPE, text=True, env=_clean_env(tmp_path), timeout=60)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


def test_an_error_still_reaches_stderr_when_the_reader_of_stdout_is_gone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class GoneReader(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", GoneReader())
    code = main(["list", "--emulator", "--name-regex", "^no such image", "--output", "json"])
    assert code == 3
    assert capsys.readouterr().err.startswith("ucloud-images: error: No image in region cn-bj2 matches")


# -- profiles and the words the command speaks ------------------------------------------------------------


def _profiles(config: str | list[dict[str, object]], credentials: list[dict[str, object]] | None = None) -> None:
    folder = Path.home() / ".ucloud"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")
    if credentials is not None:
        (folder / "credential.json").write_text(json.dumps(credentials), encoding="utf-8")


def test_a_profile_asked_for_and_missing_is_an_error_not_a_fall_back(
    capsys: pytest.CaptureFixture[str], account: Emulator
) -> None:
    code, out, err = run(capsys, "find", "--profile", "production", *CENTOS_72)
    assert (code, out) == (2, "")
    assert assert_one_sentence_error(err) == (
        "The UCloud profile named by --profile is in neither ~/.ucloud/config.json (no such file) nor "
        "~/.ucloud/credential.json (no such file)."
    )
    assert "production" not in err and account.request_count == 0


@pytest.mark.parametrize(
    ("config", "start"),
    [
        ("{broken", "The UCloud config file ~/.ucloud/config.json is not valid JSON: "),
        ([{"profile": "a", "active": True}, {"profile": "b", "active": True}],
         "The UCloud config file ~/.ucloud/config.json marks 2 profiles active ('a', 'b'); mark one, or name the "
         "profile with --profile or UCLOUD_PROFILE."),
        ([{"profile": "a", "active": True, "timeout_sec": "fast"}],
         "Invalid timeout 'fast' (from timeout_sec of profile 'a' in ~/.ucloud/config.json): "),
        ([{"profile": "a", "active": "yes"}], "Profile 'a' in the UCloud config file ~/.ucloud/config.json has "),
    ],
)
def test_malformed_profile_files_are_bad_input_exit_2(
    capsys: pytest.CaptureFixture[str], account: Emulator, config: str | list[dict[str, object]], start: str
) -> None:
    _profiles(config)
    code, out, err = run(capsys, "find", *CENTOS_72)
    assert (code, out) == (2, "")
    assert assert_one_sentence_error(err).startswith(start)
    assert account.request_count == 0


def test_a_missing_key_is_looked_for_in_the_credential_file(
    capsys: pytest.CaptureFixture[str], emulator: Emulator
) -> None:
    _profiles([{"profile": "a", "active": True, "region": "cn-bj2"}], [{"profile": "a", "public_key": "pk"}])
    code, _, err = run(capsys, "find", "--base-url", emulator.base_url, *CENTOS_72)
    assert code == 5
    assert assert_one_sentence_error(err) == (
        "No UCloud private key was found; looked at --private-key, the environment variable UCLOUD_PRIVATE_KEY and "
        "profile 'a' in ~/.ucloud/credential.json."
    )


def test_with_neither_region_nor_keys_the_region_is_said_first(capsys: pytest.CaptureFixture[str]) -> None:
    """And the exit code is the missing region's, 2 (bad input), as for a region missing alone."""
    code, _, err = run(capsys, "find", *CENTOS_72)
    assert code == 2
    assert assert_one_sentence_error(err).startswith(
        "No UCloud region was given and no public or private key was found; looked for the region at --region, "
        "the environment variable UCLOUD_REGION and the UCloud CLI's ~/.ucloud/config.json (no such file), and "
        "for the public key at --public-key, "
    )
    assert "Pulumi" not in err and "argument" not in err


def test_list_refuses_most_recent_which_it_would_ignore(
    capsys: pytest.CaptureFixture[str], account: Emulator
) -> None:
    code, out, err = run(capsys, "list", *UBUNTU_2204, "--most-recent")
    assert (code, out) == (2, "")
    assert assert_one_sentence_error(err).startswith("--most-recent chooses one image, and list shows every match")
    assert account.request_count == 0
    code, out, _ = run(capsys, "list", "--help")
    assert code == 0 and "--most-recent" not in out


# -- where the answer cannot go --------------------------------------------------------------------------------


def _command(tmp_path: Path, argv: list[str], stdout: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
                          env={**_clean_env(tmp_path), **env}, cwd=tmp_path)


@pytest.mark.slow
def test_a_closed_stdout_ends_the_command_quietly_with_141(tmp_path: Path) -> None:
    """``ucloud-images list >&-``: nobody can read the answer."""
    done = subprocess.run(f"exec '{SCRIPT}' list --emulator --output json >&-", shell=True, stderr=subprocess.PIPE,
                          text=True, timeout=60, env=_clean_env(tmp_path))
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["list", "--emulator"], ["find", "--emulator", *CENTOS_72]])
def test_a_full_disk_is_one_sentence(tmp_path: Path, argv: list[str]) -> None:
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        done = _command(tmp_path, argv, full)
    finally:
        os.close(full)
    assert done.returncode == 74
    assert done.stderr.endswith("ucloud-images: error: The output could not be written (No space left on device).\n")
    assert "Traceback" not in done.stderr and done.stderr.count("ucloud-images: error:") == 1


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"},
                                 {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}], ids=repr)
def test_an_encoding_that_cannot_show_a_name_gets_escapes(tmp_path: Path, env: dict[str, str]) -> None:
    environment = {key: value for key, value in _clean_env(tmp_path).items() if key != "PYTHONIOENCODING"}
    done = subprocess.run([str(SCRIPT), "list", "--emulator"], capture_output=True, timeout=60,
                          env={**environment, **env})
    assert (done.returncode, done.stderr) == (0, b""), done.stderr[-2000:]
    assert b"CentOS 7.2 64\\u4f4d" in done.stdout


@pytest.mark.slow
def test_lock_writes_no_lockfile_it_cannot_report(tmp_path: Path) -> None:
    (tmp_path / "ucloud-images.toml").write_text('[selections.legacy]\nname_regex = "^CentOS 7\\\\.2 64位$"\n',
                                                 encoding="utf-8")
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        done = _command(tmp_path, ["lock", "--emulator"], full)
    finally:
        os.close(full)
    assert done.returncode == 74, done.stderr
    assert done.stderr.endswith("ucloud-images: error: The output could not be written (No space left on device); "
                                "ucloud-images.lock.json was left unchanged.\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ucloud-images.toml"]
    done = subprocess.run(f"exec '{SCRIPT}' lock --emulator >&-", shell=True, stderr=subprocess.PIPE, text=True,
                          timeout=60, env=_clean_env(tmp_path), cwd=tmp_path)
    assert (done.returncode, done.stderr) == (141, "")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ucloud-images.toml"]
    assert _command(tmp_path, ["lock", "--emulator"], subprocess.PIPE).returncode == 0
    assert (tmp_path / "ucloud-images.lock.json").exists()


@pytest.mark.slow
def test_the_registry_commands_change_nothing_they_cannot_report(tmp_path: Path) -> None:
    """promote, revoke, deprecate, rollback and restore print their report before the new lockfile replaces the
    old one: with stdout on a full disk, the lockfile keeps every byte."""
    (tmp_path / "ucloud-images.toml").write_text(
        '[selections.legacy]\nname_regex = "^CentOS 7\\\\.2 64位$"\nchannels = ["prod"]\n', encoding="utf-8"
    )
    assert _command(tmp_path, ["lock", "--emulator"], subprocess.PIPE).returncode == 0
    lockfile = tmp_path / "ucloud-images.lock.json"
    image_id = _command(tmp_path, ["find", "--lock", "legacy"], subprocess.PIPE).stdout
    assert image_id.startswith("uimage-"), image_id
    edits = [["promote", "legacy", "--to", "prod"], ["revoke", image_id.strip(), "--reason", "test"],
             ["deprecate", image_id.strip(), "--replacement", "uimage-abc123"]]
    for argv in edits:
        before = lockfile.read_bytes()
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            done = _command(tmp_path, argv, full)
        finally:
            os.close(full)
        assert done.returncode == 74, (argv, done.stderr)
        assert done.stderr.endswith("ucloud-images.lock.json was left unchanged.\n"), done.stderr
        assert lockfile.read_bytes() == before, argv
        assert _command(tmp_path, argv, subprocess.PIPE).returncode == 0, argv  # and it works where it can report
        assert lockfile.read_bytes() != before, argv
