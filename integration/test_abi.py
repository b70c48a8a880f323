"""The module's view of Envoy's ABI matches the Envoy binary in use.

Every `envoy_dynamic_module_callback_*` symbol the module imports must be exported by Envoy,
and every `envoy_dynamic_module_on_*` hook Envoy requires must be exported by the module.
An ABI drift then fails here, in CI, instead of when Envoy loads the module in production.
"""

from __future__ import annotations

import subprocess

from harness import MODULE_NAME, envoy_binary, module_dir

# Hooks Envoy 1.40 resolves when it loads an HTTP filter module (docs/design/abi.md).
REQUIRED_HOOKS = {
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
}


def dynamic_symbols(path, *flags) -> set[str]:
    out = subprocess.run(["nm", "-D", *flags, str(path)], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_every_callback_the_module_imports_is_exported_by_envoy():
    module = module_dir() / f"lib{MODULE_NAME}.so"
    imported = {s for s in dynamic_symbols(module, "--undefined-only") if s.startswith("envoy_dynamic_module_callback_")}
    exported = dynamic_symbols(envoy_binary(), "--defined-only")
    assert imported, "the module imports no Envoy callbacks: wrong file?"
    missing = sorted(imported - exported)
    assert not missing, f"Envoy {envoy_binary()} does not export: {missing}"


def test_module_exports_every_hook_envoy_requires():
    module = module_dir() / f"lib{MODULE_NAME}.so"
    exported = dynamic_symbols(module, "--defined-only")
    assert not REQUIRED_HOOKS - exported, sorted(REQUIRED_HOOKS - exported)
