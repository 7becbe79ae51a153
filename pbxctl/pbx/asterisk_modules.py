"""What differs between the Asterisk versions pbxctl drives, in one place: the modules it
loads per major version, where each build lives, and the config differences (``TRAITS``).

``autoload = no`` does not pull dependencies in, so the lists carry them explicitly
(res_pjsip needs the sorcery modules and res_pjproject, res_agi needs res_speech, ...).
"""

from __future__ import annotations

# Core set every pbxctl site needs: PJSIP with RTP, the dialplan, FastAGI, queues, recording.
_BASE_16: tuple[str, ...] = (
    "res_timing_timerfd",
    "res_sorcery_config",
    "res_sorcery_memory",
    "res_sorcery_astdb",
    "res_pjproject",
    "res_pjsip",
    "res_pjsip_pubsub",
    "res_pjsip_session",
    "res_pjsip_sdp_rtp",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_caller_id",
    "res_pjsip_authenticator_digest",
    "res_pjsip_outbound_authenticator_digest",
    "res_pjsip_registrar",
    "res_pjsip_dtmf_info",
    "res_pjsip_header_funcs",
    "res_rtp_asterisk",
    "chan_pjsip",
    "func_pjsip_aor",
    "func_pjsip_contact",
    "func_pjsip_endpoint",
    "pbx_config",
    "res_speech",
    "res_agi",
    "res_musiconhold",
    "app_dial",
    "app_playback",
    "app_queue",
    "app_mixmonitor",
    "app_read",
    "app_stack",
    "app_verbose",
    "app_userevent",
    "app_senddtmf",
    "app_chanspy",
    "app_exec",
    "func_strings",
    "func_logic",
    "func_channel",
    "func_callerid",
    "func_global",
    "func_cut",
    "func_math",
    "func_timeout",
    "func_devstate",
    "func_env",
    "func_uri",
    "bridge_simple",
    "bridge_native_rtp",
    "bridge_builtin_features",
    "bridge_holding",
    "codec_ulaw",
    "codec_alaw",
    "codec_a_mu",
    "codec_gsm",
    "format_pcm",
    "format_wav",
    "format_gsm",
)

# 22: res_pjsip needs res_geolocation and res_statsd loaded (16 has neither as a dependency,
# and Debian 13 cannot load 16's res_geolocation at all); app_mixmonitor needs
# func_periodic_hook, which needs func_groupcount.
_BASE_22: tuple[str, ...] = (
    *_BASE_16[:_BASE_16.index("res_pjproject")],
    "res_statsd",
    "res_geolocation",
    *_BASE_16[_BASE_16.index("res_pjproject"):_BASE_16.index("app_mixmonitor")],
    "func_groupcount",
    "func_periodic_hook",
    *_BASE_16[_BASE_16.index("app_mixmonitor"):],
)

MODULES: dict[int, tuple[str, ...]] = {16: _BASE_16, 22: _BASE_22}

# What pbxctl builds for 22 (menuselect --enable): the runtime set plus what the build
# itself needs (res_clioriginate for `channel originate` in labs and drills).
# func_shell is built but never loaded: SHELL() runs anything as the asterisk user from a
# dialplan line, and nothing of pbxctl's needs it (load it yourself if you must).
BUILD_EXTRA_22: tuple[str, ...] = ("res_clioriginate", "res_sorcery_realtime",
                                   "res_sorcery_memory_cache", "app_record", "res_srtp",
                                   "func_shell")
SUPPORTED = tuple(sorted(MODULES))
DEFAULT_MAJOR = 22
AST22_PREFIX = "/opt/pbxctl/asterisk-22"


class Traits:
    """Config differences between versions (the renderers ask here, nowhere else)."""

    def __init__(self, major: int, *, queue_monitor_type: bool, queue_has_macro_arg: bool,
                 binary: str, moddir: str, datadir: str, fix: str) -> None:
        self.major = major
        # 16 records queue calls with Monitor unless a queue says monitor-type=MixMonitor;
        # 21+ removed Monitor: always MixMonitor, and the key is an unknown keyword.
        self.queue_monitor_type = queue_monitor_type
        # Queue(name,options,URL,announce,timeout,AGI,macro,gosub,…) on 16; 21+ removed
        # app_macro and with it the macro argument, so gosub moved one place left.
        self.queue_has_macro_arg = queue_has_macro_arg
        self.binary, self.moddir, self.datadir = binary, moddir, datadir
        self.fix = fix  # the command that installs this version

    def queue_gosub(self, context: str) -> str:
        """The Queue() arguments after ``timeout`` that run ``context`` on answer."""
        return ("," * (3 if self.queue_has_macro_arg else 2)) + context


TRAITS: dict[int, Traits] = {
    16: Traits(16, queue_monitor_type=True, queue_has_macro_arg=True,
               binary="/usr/sbin/asterisk",
               moddir="/usr/lib/asterisk/modules", datadir="/usr/share/asterisk",
               fix="make setup (installs Debian 11's asterisk 16.28 packages)"),
    22: Traits(22, queue_monitor_type=False, queue_has_macro_arg=False,
               binary=f"{AST22_PREFIX}/sbin/asterisk",
               moddir=f"{AST22_PREFIX}/lib/asterisk/modules",
               datadir=f"{AST22_PREFIX}/var/lib/asterisk",
               fix="make setup (builds 22 from Debian's source package: scripts/"
                   "build-asterisk22.sh)"),
}


def traits(major: int) -> Traits:
    try:
        return TRAITS[major]
    except KeyError:
        raise ValueError(f"pbxctl drives Asterisk {', '.join(map(str, SUPPORTED))}, "
                         f"not {major}") from None

# Config files the core (or a loaded module) complains about when absent.
QUIET_STUBS: tuple[str, ...] = (
    "ccss.conf",
    "cdr.conf",
    "cel.conf",
    "features.conf",
    "acl.conf",
    "statsd.conf",
    "geolocation.conf",
    "udptl.conf",
    "pjproject.conf",
    "res_stun_monitor.conf",
    "sorcery.conf",
    "musiconhold.conf",
    "queues.conf",
    "queuerules.conf",
    "rtp.conf",
    "pjsip.conf",
    "extensions.conf",
)


def modules_for(major: int) -> tuple[str, ...]:
    try:
        return MODULES[major]
    except KeyError:
        raise ValueError(f"no module list for Asterisk {major}; known: {sorted(MODULES)}") from None


def build_modules(major: int) -> tuple[str, ...]:
    if major != 22:
        raise ValueError(f"pbxctl builds only Asterisk 22 (asked for {major})")
    # Sorted: the build's cache key must not change when only the load order does.
    return tuple(sorted(set(MODULES[22] + BUILD_EXTRA_22)))


if __name__ == "__main__":  # scripts/build-asterisk22.sh reads the list before any venv exists
    import sys

    print("\n".join(build_modules(int(sys.argv[1]) if len(sys.argv) > 1 else 22)))
