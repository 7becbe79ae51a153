"""The Asterisk modules pbxctl loads, per major version, in one place.

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
    "func_shell",
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

MODULES: dict[int, tuple[str, ...]] = {16: _BASE_16}

# Config files the core (or a loaded module) complains about when absent.
QUIET_STUBS: tuple[str, ...] = (
    "ccss.conf",
    "cdr.conf",
    "cel.conf",
    "features.conf",
    "acl.conf",
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
