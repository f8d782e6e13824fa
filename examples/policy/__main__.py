"""The golden-image policy pack: every UCloud host boots an image the lockfile pins, and none it revokes.

Run it with `pulumi preview --policy-pack examples/policy` (and `pulumi up --policy-pack ...`). It reads the
nearest ucloud-images.lock.json from this directory up, or the `lockfile` of its config, and makes no API call.
Levels, the lockfile and extra host resource types come from `--policy-pack-config` (see docs/policy.md), or
from the arguments below, e.g. ucloud_images_policy_pack(levels={"marketplace-image": "disabled"}).
"""

from pulumi_ucloud_images.policy import ucloud_images_policy_pack

ucloud_images_policy_pack("ucloud-images")
