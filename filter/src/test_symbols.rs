//! Link-time stand-ins for Envoy's callbacks, compiled into unit-test binaries only.
//!
//! In production Envoy's binary exports these symbols and the loader binds them when it opens
//! `libmcp_policy.so`. A test executable has no Envoy to bind to, so it gets these instead.
//! Unit tests drive the filter through the fake host and never reach the real `EnvoyHost`;
//! if one ever does, the stand-in aborts loudly instead of pretending.

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log_enabled(_level: u32) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, _msg: crate::abi::ModuleBuffer) {}

macro_rules! unreachable_in_tests {
    ($($name:ident),* $(,)?) => {$(
        #[no_mangle]
        extern "C" fn $name() {
            eprintln!(concat!(stringify!($name), " called in a unit test: use the fake host"));
            std::process::abort();
        }
    )*};
}

unreachable_in_tests!(
    envoy_dynamic_module_callback_http_filter_config_define_counter,
    envoy_dynamic_module_callback_http_filter_increment_counter,
    envoy_dynamic_module_callback_http_get_header,
    envoy_dynamic_module_callback_http_set_header,
    envoy_dynamic_module_callback_http_get_headers_size,
    envoy_dynamic_module_callback_http_get_headers,
    envoy_dynamic_module_callback_http_send_response,
    envoy_dynamic_module_callback_http_get_body_size,
    envoy_dynamic_module_callback_http_get_body_chunks_size,
    envoy_dynamic_module_callback_http_get_body_chunks,
    envoy_dynamic_module_callback_http_append_body,
    envoy_dynamic_module_callback_http_drain_body,
    envoy_dynamic_module_callback_http_received_buffered_request_body,
    envoy_dynamic_module_callback_http_received_buffered_response_body,
    envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch,
    envoy_dynamic_module_callback_http_set_dynamic_metadata_number,
    envoy_dynamic_module_callback_http_get_metadata_string,
    envoy_dynamic_module_callback_http_clear_route_cache,
    envoy_dynamic_module_callback_http_filter_get_attribute_string,
    envoy_dynamic_module_callback_http_filter_get_attribute_bool,
    envoy_dynamic_module_callback_http_set_buffer_limit,
    envoy_dynamic_module_callback_http_filter_get_worker_index,
    envoy_dynamic_module_callback_http_filter_http_callout,
    envoy_dynamic_module_callback_http_clear_route_cluster_cache,
);
