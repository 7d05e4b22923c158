"""The Debian packages the default model's corpus draws real recordings from.

Every entry is a package in Debian main (DFSG-free); the harvester still reads each one's
copyright file and keeps only files whose licence allows training and redistributing a model
(`licences.py`). `heldout=True` packages are never trained on: they are the cross-source test
(model card, section (b)).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DebianSource:
    name: str
    heldout: bool = False


# The cross-source test: foley (minetest), varied game effects incl. animals (scorched3d),
# telephone speech in Italian (asterisk), ringtones and notification music (lomiri).
HELDOUT = frozenset(
    {"minetest-data", "scorched3d-data", "asterisk-core-sounds-it-wav", "lomiri-sounds"}
)

PACKAGES: tuple[DebianSource, ...] = tuple(
    DebianSource(n, heldout=n in HELDOUT)
    for n in (
        "sound-theme-freedesktop",
        "oxygen-sounds",
        "yaru-theme-sound",
        "deepin-sound-theme",
        "psi-plus-sounds",
        "xblast-tnt-sounds",
        "heroes-sound-effects",
        "sound-icons",
        "chromium-bsu-data",
        "pax-britannica-data",
        "wordwarvi-sound",
        "atanks-data",
        "openttd-opensfx",
        "pingus-data",
        "tuxtype-data",
        "minetest-data",
        "lmms-common",
        "sonic-pi-samples",
        "frozen-bubble-data",
        "asterisk-core-sounds-en-wav",
        "asterisk-core-sounds-fr-wav",
        "asterisk-core-sounds-es-wav",
        "asterisk-core-sounds-it-wav",
        "asterisk-core-sounds-ru-wav",
        "asterisk-moh-opsound-wav",
        "ufoai-sound",
        "aisleriot",
        "lomiri-sounds",
        "tuxpaint-data",
        "freedoom",
        "extremetuxracer-data",
        "freeciv-data",
        "ktuberling-data",
        "gcompris-qt-data",
        "colobot-common-sounds",
        "lincity-ng-data",
        "xmoto-data",
        "marsshooter-data",
        "neverball-data",
        "scorched3d-data",
        "freedink-data",
        "trigger-rally-data",
        "openclonk-data",
        "flare-game",
        "hydrogen-drumkits",
        "hydrogen-drumkits-effects",
        "tuxpaint-stamps-default",
        "wesnoth-1.16-data",
        "wesnoth-1.16-music",
        "hedgewars-data",
        "warzone2100-data",
        "warzone2100-music",
        "supertux-data",
        "megaglest-data",
        "widelands-data",
        "ri-li-data",
        "naev-data",
        "supertuxkart-data",
        "redeclipse-data",
    )
)
