"""Where the FreeSWITCH that pbxctl builds lives, and the modules it loads (the build script
scripts/build-freeswitch.sh builds the same set)."""

from __future__ import annotations

from pathlib import Path

FS_PREFIX = Path("/opt/pbxctl/freeswitch-1.10")
MODULES = ("mod_console", "mod_logfile", "mod_event_socket", "mod_commands", "mod_dptools",
           "mod_dialplan_xml", "mod_sofia", "mod_loopback", "mod_sndfile", "mod_native_file",
           "mod_tone_stream", "mod_db", "mod_hash", "mod_expr", "mod_callcenter", "mod_spandsp",
           "mod_say_en", "mod_opus", "mod_cdr_csv")
