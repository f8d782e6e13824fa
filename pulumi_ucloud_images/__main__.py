"""``python -m pulumi_ucloud_images`` starts the provider plugin: Pulumi's Python plugin host runs a package
installed from source this way (``pulumi package add <path>``). The command-line tool is ``ucloud-images``."""

from ._pulumi.plugin_server import main

if __name__ == "__main__":
    main()
