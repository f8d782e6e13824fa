"""What the engine shows of the private key (nothing) and of a failed lookup (one sentence, no traceback)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulumi_ucloud_images import AmbiguousImageError, NoImageFoundError, lookup_images
from pulumi_ucloud_images._emulator.service import DEMO_PUBLIC_KEY, Emulator
from tests.engine.engine_project import Project, new_project, python_runtime

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PRIVATE_KEY = "engine-secret-7f3a9c1e5b2d4f60a8c"

PROGRAM = '''\
import pulumi
from pulumi_ucloud_images import PinnedImage, get_images_output

ubuntu = get_images_output(os_type="linux", name_regex=r"^Ubuntu 22\\.04", architecture="x86_64",
                           image_type="base", most_recent=True)
pin = PinnedImage("centos", os_type="linux", name_regex=r"^CentOS 7\\.2 64")
pulumi.export("ubuntu", ubuntu.image_id)
pulumi.export("pinned", pin.image_id)
'''


def without_ucloud_env(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if not name.startswith("UCLOUD_")}


@pytest.fixture
def keyed_emulator() -> Iterator[Emulator]:
    with Emulator(keys={DEMO_PUBLIC_KEY: PRIVATE_KEY}) as emulator:
        yield emulator


def test_the_private_key_set_as_secret_config_is_nowhere_in_plaintext(
    tmp_path: Path, engine_dir: Path, keyed_emulator: Emulator
) -> None:
    env = without_ucloud_env(dict(os.environ))  # the stack config is the only source of settings
    project = new_project(tmp_path, engine_dir, env, manifest={"name": "secrets", "runtime": python_runtime()},
                          files={"__main__.py": PROGRAM})
    project.config("ucloud:region", "cn-bj2")
    project.config("ucloud:baseUrl", keyed_emulator.base_url)
    project.config("ucloud:publicKey", DEMO_PUBLIC_KEY)
    project.config("ucloud:privateKey", PRIVATE_KEY, secret=True)

    shown = [project.run("preview"), project.run("up", "--yes"), project.run("refresh", "--yes")]
    outputs = project.outputs()
    assert outputs["ubuntu"].startswith("uimage-") and outputs["pinned"].startswith("uimage-")
    assert keyed_emulator.request_count > 0  # the lookups really went to the emulator, signed with the key

    forms = {PRIVATE_KEY, base64.b64encode(PRIVATE_KEY.encode()).decode()}
    exported = project.run("stack", "export").stdout
    assert not any(form in exported for form in forms)
    for done in shown:
        assert not any(form in done.stdout + done.stderr for form in forms)
    files = [p for root in (project.state, project.home, project.dir) for p in root.rglob("*") if p.is_file()]
    assert files
    leaking = [str(p) for p in files if any(form.encode() in p.read_bytes() for form in forms)]
    assert leaking == []
    project.run("destroy", "--yes")


def failing_project(tmp_path: Path, engine_dir: Path, env: dict[str, str], call: str) -> Project:
    program = f"import pulumi\nfrom pulumi_ucloud_images import PinnedImage, get_images\n\n{call}\n"
    return new_project(tmp_path, engine_dir, env, manifest={"name": "failing", "runtime": python_runtime()},
                       files={"__main__.py": program})


CASES = {
    "ambiguous function": ('get_images(os_type="linux", name_regex=r"^Ubuntu")', AmbiguousImageError,
                           {"os_type": "linux", "name_regex": r"^Ubuntu"}),
    "empty function": ('get_images(name_regex="^no-such-image$")', NoImageFoundError,
                       {"name_regex": "^no-such-image$"}),
    "empty pin": ('PinnedImage("pin", name_regex="^no-such-image$")', NoImageFoundError,
                  {"name_regex": "^no-such-image$"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_lookup_fails_the_preview_with_the_library_sentence(
    case: str, tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]
) -> None:
    call, error, query = CASES[case]
    with pytest.raises(error) as raised:
        lookup_images(query)
    sentence = str(raised.value).splitlines()[0]
    project = failing_project(tmp_path, engine_dir, emulator_env, call)
    done = project.run("preview", check=False)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert sentence in shown
    assert "Traceback" not in shown


def test_an_image_past_its_end_of_life_is_a_warning_the_engine_shows(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]
) -> None:
    """CentOS 7.2 (EOL 2024/06/30) chosen by get_images and pinned by PinnedImage: the update succeeds, warning."""
    program = ("import pulumi\nfrom pulumi_ucloud_images import PinnedImage, get_images\n\n"
               'get_images(os_type="linux", name_regex=r"^CentOS 7\\.2 64")\n'
               'PinnedImage("centos", os_type="linux", name_regex=r"^CentOS 7\\.2 64")\n')
    centos = lookup_images(os_type="linux", name_regex=r"^CentOS 7\.2 64")
    assert centos.image.eol_date is not None and centos.warnings  # the catalogue's CentOS 7.2 is past its EOL
    project = new_project(tmp_path, engine_dir, emulator_env, manifest={"name": "eol", "runtime": python_runtime()},
                          files={"__main__.py": program})
    done = project.run("up", "--yes")
    shown = done.stdout + done.stderr
    warnings = [line for line in shown.splitlines() if "warning:" in line and "past its end of life" in line]
    assert any(centos.image_id in line and "pulumi:pulumi:Stack" in line for line in warnings), shown
    assert any("PinnedImage" in line and "the pinned image" in line for line in warnings), shown
    assert "Traceback" not in shown
