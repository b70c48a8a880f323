//! Raw binding of Envoy's dynamic-module C ABI (Envoy 1.40, ABI `v0.2.0`). Not for direct use:
//! everything above this module goes through the safe wrappers in [`crate::envoy`].
//!
//! Written by hand from the facts of `source/extensions/dynamic_modules/abi/abi.h` and checked
//! against the Envoy 1.40.0 binary (see `docs/design/abi.md`). Only the callbacks this module
//! calls are declared; `integration/test_abi.py` fails if any of them is missing from the Envoy
//! binary in use, so an ABI drift shows up in CI, not in production.
//!
//! Conventions of the C ABI:
//! - C enums are `u32`; `bool` is C `_Bool` (Rust `bool`).
//! - An *Envoy buffer* points into memory Envoy owns; it is valid only during the current hook
//!   and only until a setter touches the same header map or body. Copy before mutating.
//! - A *module buffer* points into memory we own; Envoy copies it during the call.

use std::ffi::c_void;

/// Memory owned by Envoy, lent for the current hook.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub len: usize,
}

/// Memory owned by the module, copied by Envoy during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub len: usize,
}

impl ModuleBuffer {
    pub fn from_bytes(b: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }
    /// A null buffer: for `set_header`, "remove this header".
    pub const NULL: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        len: 0,
    };
}

/// A header owned by Envoy (name and value lent for the current hook).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_len: usize,
    pub value_ptr: *const u8,
    pub value_len: usize,
}

/// A header owned by the module (for local replies).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleHeader {
    pub key_ptr: *const u8,
    pub key_len: usize,
    pub value_ptr: *const u8,
    pub value_len: usize,
}

/// Envoy's pointer to its per-stream filter object.
pub type FilterEnvoyPtr = *mut c_void;
/// Envoy's pointer to its filter-config object (valid during `config_new`).
pub type ConfigEnvoyPtr = *mut c_void;

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const RESPONSE_TRAILERS: u32 = 3;
}

/// `envoy_dynamic_module_type_http_body_type`.
pub mod body_type {
    pub const RECEIVED_REQUEST: u32 = 0;
    pub const BUFFERED_REQUEST: u32 = 1;
    pub const RECEIVED_RESPONSE: u32 = 2;
    pub const BUFFERED_RESPONSE: u32 = 3;
}

/// Return values of the headers hooks.
pub mod headers_status {
    pub const CONTINUE: u32 = 0;
    pub const STOP_ITERATION: u32 = 1;
}

/// Return values of the body hooks.
pub mod body_status {
    pub const CONTINUE: u32 = 0;
    pub const STOP_ITERATION_AND_BUFFER: u32 = 1;
    pub const STOP_ITERATION_NO_BUFFER: u32 = 3;
}

/// Return values of the trailers hooks.
pub mod trailers_status {
    pub const CONTINUE: u32 = 0;
    pub const STOP_ITERATION: u32 = 1;
}

/// `envoy_dynamic_module_type_log_level`.
pub mod log_level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
}

/// `envoy_dynamic_module_type_metadata_source`.
pub mod metadata_source {
    pub const DYNAMIC: u32 = 0;
    pub const ROUTE: u32 = 1;
}

/// Attribute ids (`envoy_dynamic_module_type_attribute_id`) this module reads.
pub mod attribute {
    pub const SOURCE_ADDRESS: u32 = 24;
    pub const CONNECTION_MTLS: u32 = 29;
    pub const CONNECTION_URI_SAN_PEER_CERTIFICATE: u32 = 37;
}

/// `envoy_dynamic_module_type_metrics_result`: 0 means success.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_http_callout_init_result`.
pub mod callout_init {
    pub const SUCCESS: u32 = 0;
    pub const MISSING_REQUIRED_HEADERS: u32 = 1;
    pub const CLUSTER_NOT_FOUND: u32 = 2;
    pub const DUPLICATE_CALLOUT_ID: u32 = 3;
    pub const CANNOT_CREATE_REQUEST: u32 = 4;
}

/// `envoy_dynamic_module_type_http_callout_result`.
pub mod callout_result {
    pub const SUCCESS: u32 = 0;
    pub const RESET: u32 = 1;
    pub const EXCEED_RESPONSE_BUFFER_LIMIT: u32 = 2;
}

extern "C" {
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_len: usize,
        id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        out: *mut EnvoyBuffer,
        index: usize,
        count_out: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(filter: FilterEnvoyPtr, header_type: u32) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        out: *mut EnvoyHeader,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status: u32,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_size(filter: FilterEnvoyPtr, body_type: u32) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(filter: FilterEnvoyPtr, body_type: u32) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        out: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(filter: FilterEnvoyPtr, body_type: u32, len: usize) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(filter: FilterEnvoyPtr) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(filter: FilterEnvoyPtr) -> bool;

    /// Sets `len` string entries (`{key, value}` module buffers, the layout of
    /// [`ModuleHeader`]) in one namespace, resolving it and merging once.
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
        filter: FilterEnvoyPtr,
        namespace: ModuleBuffer,
        entries: *const ModuleHeader,
        len: usize,
    );
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
        filter: FilterEnvoyPtr,
        namespace: ModuleBuffer,
        key: ModuleBuffer,
        value: f64,
    );
    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: u32,
        namespace: ModuleBuffer,
        key: ModuleBuffer,
        out: *mut EnvoyBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);
    /// Pick the route's cluster again (a `cluster_header` route reads the header anew) without
    /// matching the route again.
    pub fn envoy_dynamic_module_callback_http_clear_route_cluster_cache(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        id: u32,
        out: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter: FilterEnvoyPtr,
        id: u32,
        out: *mut bool,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_set_buffer_limit(filter: FilterEnvoyPtr, limit: u64);
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(filter: FilterEnvoyPtr) -> u32;
    /// Start an HTTP request to `cluster` on this stream's worker; Envoy writes the callout id
    /// to `callout_id_out` and later calls `on_http_filter_http_callout_done` with it. The
    /// headers must include `:method`, `:path` and `host`. Returns a `callout_init` value.
    /// (1.40 form: Envoy assigns the id; checked against the binary, docs/design/abi.md.)
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: FilterEnvoyPtr,
        callout_id_out: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
}
