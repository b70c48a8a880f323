//! The functions Envoy calls (`envoy_dynamic_module_on_*`).
//!
//! Every hook does the same three things: catch any panic, call the safe filter logic, and
//! fail closed if it panicked. A panicking stream is answered with a JSON-RPC internal error
//! (HTTP 500) and marked poisoned, so later hooks of that stream pass through untouched; Envoy
//! and every other stream keep serving. A panicking `config_new` rejects the config.

// These are FFI entry points: Envoy owns the pointer contract (documented per function), and the
// functions cannot be `unsafe fn` in a way that changes anything for a C caller.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::abi::{
    self, body_status, headers_status, trailers_status, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHeader, FilterEnvoyPtr,
};
use crate::envoy::{self, ConfigHost, EnvoyHost, Host, Level};
use crate::filter::{self, BodyStatus, HeadersStatus, McpFilter, Runtime};
use crate::stats::Stats;
use mcp_policy_core::config::FilterConfig;
use mcp_policy_core::jsonrpc::code;
use mcp_policy_core::reply;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The ABI version this binding was written against (Envoy 1.40).
static ABI_VERSION: &[u8] = b"v0.2.0\0";

/// Per-stream state owned by the module (behind Envoy's `filter_module_ptr`).
struct Stream {
    runtime: *const Runtime,
    filter: McpFilter,
    /// Set after a caught panic: the stream was answered and nothing else is attempted.
    poisoned: bool,
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    ABI_VERSION.as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: ConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let built = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy lends the config bytes for the duration of this call.
        let bytes = unsafe { lend(config) };
        let config = FilterConfig::from_json(bytes).map_err(|e| e.to_string())?;
        // SAFETY: `config_envoy` is valid during config_new, and `host` does not escape it.
        let mut host = unsafe { ConfigHost::new(config_envoy) };
        let stats = Stats::define(|name, labels| host.define_counter(name, labels))?;
        if config.panic_header.is_some() {
            envoy::log(
                Level::Warn,
                format_args!("mcp_policy: fault_injection is enabled: test-only, never use in production"),
            );
        }
        // The process-wide limit counters are created here, on the main thread, not by the first call.
        std::sync::LazyLock::force(&crate::limits::TABLE);
        Ok::<_, String>(Box::new(Runtime { config, stats }))
    }));
    match built {
        Ok(Ok(runtime)) => Box::into_raw(runtime) as *const c_void,
        Ok(Err(msg)) => {
            envoy::log(Level::Error, format_args!("mcp_policy: config rejected: {msg}"));
            std::ptr::null()
        }
        Err(p) => {
            filter::log_panic("config_new", p.as_ref());
            std::ptr::null()
        }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if config.is_null() {
        return;
    }
    // SAFETY: `config` came from Box::into_raw in config_new and Envoy destroys it once, after
    // every filter created from it is gone.
    let _ = catch_unwind(|| drop(unsafe { Box::from_raw(config as *mut Runtime) }));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(config: *const c_void, _fe: FilterEnvoyPtr) -> *const c_void {
    if config.is_null() {
        return std::ptr::null();
    }
    let stream = Box::new(Stream {
        runtime: config as *const Runtime,
        filter: McpFilter::new(),
        poisoned: false,
    });
    Box::into_raw(stream) as *const c_void
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(fm: *const c_void) {
    if fm.is_null() {
        return;
    }
    // SAFETY: `fm` came from Box::into_raw in filter_new; Envoy destroys it exactly once.
    let _ = catch_unwind(|| drop(unsafe { Box::from_raw(fm as *mut Stream) }));
}

/// Which way a failed hook must answer.
#[derive(Clone, Copy)]
enum Path {
    Request,
    Response,
}

/// Run one hook: the panic guard every exported hook shares.
fn run<R: Copy>(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    hook: &'static str,
    path: Path,
    pass: R,
    failed: R,
    f: impl FnOnce(&mut McpFilter, &Runtime, &mut EnvoyHost) -> R,
) -> R {
    if fm.is_null() {
        return pass;
    }
    // SAFETY: `fm` is our Stream (from filter_new); Envoy calls a stream's hooks on one worker
    // thread, one at a time, so this is the only live reference.
    let stream = unsafe { &mut *(fm as *mut Stream) };
    if stream.poisoned {
        return pass;
    }
    // SAFETY: the Runtime outlives every stream made from it (Envoy's filter holds its config).
    let runtime = unsafe { &*stream.runtime };
    // SAFETY: `fe` is the pointer Envoy passed to this very hook; `host` dies with the call.
    let mut host = unsafe { EnvoyHost::new(fe) };
    let filter = &mut stream.filter;
    match catch_unwind(AssertUnwindSafe(|| f(filter, runtime, &mut host))) {
        Ok(r) => r,
        Err(payload) => {
            stream.poisoned = true;
            let _ = catch_unwind(AssertUnwindSafe(|| {
                filter::log_panic(hook, payload.as_ref());
                host.increment_counter(runtime.stats.panics_total, &[hook], 1);
                let status = match path {
                    Path::Request => 500,
                    // Upstream answered but we could not judge the answer: a gateway error.
                    Path::Response => 502,
                };
                // On the response path Envoy turns this into a stream reset if response
                // headers already went downstream. The request's id, when known, goes in the
                // error so the client can match it.
                let message = "internal error in the MCP policy module; the request was not processed";
                let mut reply = reply::jsonrpc_error(
                    status,
                    "mcp_policy_internal_error",
                    None,
                    code::INTERNAL_ERROR,
                    message,
                    None,
                );
                if let Some(body) = filter.failure_body(message) {
                    reply.body = body;
                }
                host.send_response(&reply);
            }));
            failed
        }
    }
}

fn headers_code(s: HeadersStatus) -> u32 {
    match s {
        HeadersStatus::Continue => headers_status::CONTINUE,
        HeadersStatus::StopIteration => headers_status::STOP_ITERATION,
    }
}

fn body_code(s: BodyStatus) -> u32 {
    match s {
        BodyStatus::Continue => body_status::CONTINUE,
        BodyStatus::StopAndBuffer => body_status::STOP_ITERATION_AND_BUFFER,
        BodyStatus::StopNoBuffer => body_status::STOP_ITERATION_NO_BUFFER,
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    end_of_stream: bool,
) -> u32 {
    run(
        fe,
        fm,
        "request_headers",
        Path::Request,
        headers_status::CONTINUE,
        headers_status::STOP_ITERATION,
        |f, rt, h| headers_code(f.on_request_headers(rt, h, end_of_stream)),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    end_of_stream: bool,
) -> u32 {
    run(
        fe,
        fm,
        "request_body",
        Path::Request,
        body_status::CONTINUE,
        body_status::STOP_ITERATION_NO_BUFFER,
        |f, rt, h| body_code(f.on_request_body(rt, h, end_of_stream)),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(fe: FilterEnvoyPtr, fm: *const c_void) -> u32 {
    run(
        fe,
        fm,
        "request_trailers",
        Path::Request,
        trailers_status::CONTINUE,
        trailers_status::STOP_ITERATION,
        |f, rt, h| {
            h.for_trailers();
            let status = f.on_request_trailers(rt, h);
            match status {
                BodyStatus::Continue => trailers_status::CONTINUE,
                BodyStatus::StopAndBuffer | BodyStatus::StopNoBuffer => trailers_status::STOP_ITERATION,
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    end_of_stream: bool,
) -> u32 {
    run(
        fe,
        fm,
        "response_headers",
        Path::Response,
        headers_status::CONTINUE,
        headers_status::STOP_ITERATION,
        |f, rt, h| headers_code(f.on_response_headers(rt, h, end_of_stream)),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    end_of_stream: bool,
) -> u32 {
    run(
        fe,
        fm,
        "response_body",
        Path::Response,
        body_status::CONTINUE,
        body_status::STOP_ITERATION_NO_BUFFER,
        |f, rt, h| body_code(f.on_response_body(rt, h, end_of_stream)),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(fe: FilterEnvoyPtr, fm: *const c_void) -> u32 {
    // Trailers end a response: a buffered list answer is judged here, never passed unread.
    run(
        fe,
        fm,
        "response_trailers",
        Path::Response,
        trailers_status::CONTINUE,
        trailers_status::STOP_ITERATION,
        |f, rt, h| {
            h.for_trailers();
            let status = f.on_response_trailers(rt, h);
            match status {
                BodyStatus::Continue => trailers_status::CONTINUE,
                BodyStatus::StopAndBuffer | BodyStatus::StopNoBuffer => trailers_status::STOP_ITERATION,
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(_fe: FilterEnvoyPtr, _fm: *const c_void) {}

// Hooks Envoy requires but this module does not use (streams, timers, watermark handling);
// their signatures follow the ABI so the loader resolves them. Callouts are used (virtual
// servers): see `..._http_callout_done` below.

/// A virtual server's fan-out callout finished: hand its status, headers and body to the
/// filter, which answers the client once the last one is in.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    fe: FilterEnvoyPtr,
    fm: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
) {
    run(fe, fm, "http_callout_done", Path::Request, (), (), |f, rt, h| {
        // SAFETY: Envoy lends `headers[..headers_len]` and `body[..body_len]` (and the bytes
        // they point to) for the duration of this hook; they are copied before any call back
        // into Envoy could change them.
        let (hs, data) = unsafe { callout_parts(headers, headers_len, body, body_len) };
        let pairs: Vec<(&[u8], &[u8])> = hs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        f.on_callout_done(rt, h, callout_id, result, &pairs, &data);
    })
}

/// A callout's answer, copied: headers (name, value) and the body.
type CalloutParts = (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

/// Copy a callout's answer out of Envoy's buffers.
///
/// # Safety
/// The pointers must be the ones Envoy passed to the callout-done hook being run.
unsafe fn callout_parts(
    headers: *const EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
) -> CalloutParts {
    let mut hs = Vec::new();
    if !headers.is_null() {
        // SAFETY: per the caller, `headers` holds `headers_len` valid entries.
        for h in unsafe { std::slice::from_raw_parts(headers, headers_len) } {
            // SAFETY: each entry's key and value are valid for their lengths (or null and 0).
            let (k, v) = unsafe { (raw(h.key_ptr, h.key_len), raw(h.value_ptr, h.value_len)) };
            hs.push((k.to_vec(), v.to_vec()));
        }
    }
    let mut data = Vec::new();
    if !body.is_null() {
        // SAFETY: per the caller, `body` holds `body_len` valid chunks.
        for c in unsafe { std::slice::from_raw_parts(body, body_len) } {
            // SAFETY: each chunk is valid for its length (or null and 0).
            data.extend_from_slice(unsafe { raw(c.ptr, c.len) });
        }
    }
    (hs, data)
}

/// # Safety
/// `ptr` must be valid for `len` bytes, or null with any length.
unsafe fn raw<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: per the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _stream_id: u64,
    _headers: *const EnvoyHeader,
    _headers_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _stream_id: u64,
    _trailers: *const EnvoyHeader,
    _trailers_len: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _fe: FilterEnvoyPtr,
    _fm: *const c_void,
) {
}

/// # Safety
/// `b` must be a buffer Envoy lends for the current call.
unsafe fn lend<'a>(b: EnvoyBuffer) -> &'a [u8] {
    if b.ptr.is_null() || b.len == 0 {
        &[]
    } else {
        // SAFETY: non-null and `len` bytes valid for this call (caller contract).
        unsafe { std::slice::from_raw_parts(b.ptr, b.len) }
    }
}

// Keep the raw module referenced for docs and to silence unused-import lints on some configs.
#[allow(dead_code)]
const _ABI_REFERENCED: u32 = abi::METRICS_SUCCESS;
