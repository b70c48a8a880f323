//! The safe layer over [`crate::abi`]: a [`Host`] trait with one real implementation
//! ([`EnvoyHost`]) and a fake for unit tests (`crate::fake`).
//!
//! Owns every `unsafe` call into Envoy. Lifetimes do the bookkeeping the C ABI asks for:
//! an [`EnvoyHost`] lives for one hook call only, borrowed header values cannot outlive it, and
//! a setter needs `&mut self`, so no Envoy-owned slice survives a mutation of its map.

use crate::abi::{self, EnvoyBuffer, EnvoyHeader, FilterEnvoyPtr, ModuleBuffer, ModuleHeader};
use mcp_policy_core::reply::Reply;

/// Which direction's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// Log levels, as Envoy numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn abi(self) -> u32 {
        match self {
            Level::Debug => abi::log_level::DEBUG,
            Level::Info => abi::log_level::INFO,
            Level::Warn => abi::log_level::WARN,
            Level::Error => abi::log_level::ERROR,
        }
    }
}

/// What the filter logic may ask of Envoy during one hook.
pub trait Host {
    fn request_header(&self, name: &str) -> Option<&[u8]>;
    /// How many values a request header has (duplicates matter for security headers).
    fn request_header_count(&self, name: &str) -> usize;
    /// The `index`-th value of a request header.
    fn request_header_at(&self, name: &str, index: usize) -> Option<&[u8]>;
    /// Every request header, in order (allocates: only for the rare requests that need it).
    fn request_headers(&self) -> Vec<(&[u8], &[u8])>;
    fn set_request_header(&mut self, name: &str, value: &[u8]);
    fn remove_request_header(&mut self, name: &str);
    fn response_header(&self, name: &str) -> Option<&[u8]>;
    fn set_response_header(&mut self, name: &str, value: &[u8]);
    fn remove_response_header(&mut self, name: &str);

    /// Bytes of body seen so far on `side` (buffered plus the chunk of this hook).
    fn body_len(&self, side: Side) -> usize;
    /// Append the whole body seen so far on `side` to `out`.
    fn read_body(&self, side: Side, out: &mut Vec<u8>);
    /// Replace the whole body on `side` with `data`. The caller fixes `content-length`.
    fn replace_body(&mut self, side: Side, data: &[u8]);
    /// Raise Envoy's per-stream buffer limit so our own limit answers first, with a clear error.
    fn set_buffer_limit(&mut self, bytes: u64);

    fn send_response(&mut self, reply: &Reply);
    /// Set `key` in this module's dynamic-metadata namespace. May be buffered until the hook
    /// ends or a local reply is sent; later values for the same key win.
    fn set_metadata(&mut self, key: &str, value: &str);
    fn set_metadata_number(&mut self, key: &str, value: f64);
    fn clear_route_cache(&mut self);
    /// Pick the current route's cluster again (e.g. after setting the header its
    /// `cluster_header` reads), keeping the route.
    fn refresh_route_cluster(&mut self);
    fn increment_counter(&mut self, id: usize, labels: &[&str], by: u64);

    fn attribute_string(&self, id: u32) -> Option<&[u8]>;
    fn attribute_bool(&self, id: u32) -> Option<bool>;
    /// A string from the matched route's metadata, in this module's namespace.
    fn route_metadata(&self, key: &str) -> Option<&[u8]>;
    /// Start an HTTP callout (a request of the module's own) to `cluster`; its answer comes to
    /// `McpFilter::on_callout_done`. `Err` says why it could not start.
    fn http_callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, &'static str>;
}

/// The dynamic-metadata namespace the module writes (`%DYNAMIC_METADATA(mcp_policy:...)%`).
pub const METADATA_NAMESPACE: &str = "mcp_policy";

/// The real host: Envoy's filter pointer for the duration of one hook.
pub struct EnvoyHost {
    fe: FilterEnvoyPtr,
    /// Dynamic-metadata strings set during this hook, written to Envoy in one batch call (each
    /// separate call resolves the namespace and merges a Struct: ~2k instructions apiece).
    metadata: MetadataBatch,
    /// This is a trailers hook: the whole body is the buffered one (there is no received
    /// chunk, and appending must go to the buffer).
    trailers: bool,
}

/// Keys and values copied into one buffer, with their spans.
#[derive(Default)]
struct MetadataBatch {
    text: String,
    spans: Vec<(usize, usize, usize)>,
}

impl EnvoyHost {
    /// # Safety
    /// `fe` must be the filter pointer Envoy passed to the hook being run, and the value must
    /// not outlive that hook.
    pub unsafe fn new(fe: FilterEnvoyPtr) -> EnvoyHost {
        EnvoyHost {
            fe,
            metadata: MetadataBatch::default(),
            trailers: false,
        }
    }

    /// Mark this host as serving a trailers hook (see `trailers`).
    pub fn for_trailers(&mut self) {
        self.trailers = true;
    }

    /// Write the buffered metadata to Envoy (one call per 16 entries).
    fn flush_metadata(&mut self) {
        if self.metadata.spans.is_empty() {
            return;
        }
        let text = self.metadata.text.as_bytes();
        for chunk in self.metadata.spans.chunks(16) {
            let mut entries = [ModuleHeader {
                key_ptr: std::ptr::null(),
                key_len: 0,
                value_ptr: std::ptr::null(),
                value_len: 0,
            }; 16];
            for (e, &(k, v, end)) in entries.iter_mut().zip(chunk) {
                let (key, value) = (&text[k..v], &text[v..end]);
                *e = ModuleHeader {
                    key_ptr: key.as_ptr(),
                    key_len: key.len(),
                    value_ptr: value.as_ptr(),
                    value_len: value.len(),
                };
            }
            // SAFETY: `fe` valid for this hook; `entries[..n]` point into `text`, alive for the
            // call; Envoy copies them. Signature checked against the 1.40 binary (docs/design/abi.md).
            unsafe {
                abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
                    self.fe,
                    ModuleBuffer::from_bytes(METADATA_NAMESPACE.as_bytes()),
                    entries.as_ptr(),
                    chunk.len(),
                )
            }
        }
        self.metadata.text.clear();
        self.metadata.spans.clear();
    }

    fn get_header(&self, ty: u32, name: &str, index: usize) -> Option<&[u8]> {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            len: 0,
        };
        let mut count = 0usize;
        // SAFETY: `fe` is valid for this hook (constructor contract); `name` outlives the call;
        // `out` and `count` are valid for writes.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.fe,
                ty,
                ModuleBuffer::from_bytes(name.as_bytes()),
                &mut out,
                index,
                &mut count,
            )
        };
        if !found {
            return None;
        }
        // SAFETY: Envoy lends `out` until the hook returns or the map is mutated; the returned
        // slice borrows `self`, and every mutation takes `&mut self`.
        Some(unsafe { envoy_slice(out) })
    }

    fn header_count(&self, ty: u32, name: &str) -> usize {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            len: 0,
        };
        let mut count = 0usize;
        // SAFETY: as in `get_header`; only the count is used.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.fe,
                ty,
                ModuleBuffer::from_bytes(name.as_bytes()),
                &mut out,
                0,
                &mut count,
            );
        }
        count
    }

    fn put_header(&mut self, ty: u32, name: &str, value: ModuleBuffer) {
        // SAFETY: `fe` valid for this hook; module buffers are copied by Envoy during the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.fe,
                ty,
                ModuleBuffer::from_bytes(name.as_bytes()),
                value,
            );
        }
    }

    fn body_types(side: Side) -> (u32, u32) {
        match side {
            Side::Request => (abi::body_type::BUFFERED_REQUEST, abi::body_type::RECEIVED_REQUEST),
            Side::Response => (abi::body_type::BUFFERED_RESPONSE, abi::body_type::RECEIVED_RESPONSE),
        }
    }

    /// When true, the chunk of this hook *is* the buffered body (reading both would double it).
    fn received_is_buffered(&self, side: Side) -> bool {
        if self.trailers {
            return true;
        }
        // SAFETY: `fe` valid for this hook.
        unsafe {
            match side {
                Side::Request => abi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.fe),
                Side::Response => abi::envoy_dynamic_module_callback_http_received_buffered_response_body(self.fe),
            }
        }
    }

    fn body_size(&self, ty: u32) -> usize {
        // SAFETY: `fe` valid for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.fe, ty) }
    }

    fn append_chunks(&self, ty: u32, out: &mut Vec<u8>) {
        // SAFETY: `fe` valid for this hook.
        let n = unsafe { abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.fe, ty) };
        if n == 0 {
            return;
        }
        let mut chunks = vec![
            EnvoyBuffer {
                ptr: std::ptr::null(),
                len: 0
            };
            n
        ];
        // SAFETY: `fe` valid for this hook.
        out.reserve(unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(self.fe, ty) });
        // SAFETY: `chunks` has room for exactly the `n` entries Envoy reported.
        let ok = unsafe { abi::envoy_dynamic_module_callback_http_get_body_chunks(self.fe, ty, chunks.as_mut_ptr()) };
        if !ok {
            return;
        }
        for c in chunks {
            // SAFETY: lent by Envoy for this hook; copied out immediately.
            out.extend_from_slice(unsafe { envoy_slice(c) });
        }
    }
}

/// Header pairs as the ABI's module-owned header views (valid while the pairs are).
fn module_headers<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<ModuleHeader> {
    pairs
        .map(|(k, v)| ModuleHeader {
            key_ptr: k.as_ptr(),
            key_len: k.len(),
            value_ptr: v.as_ptr(),
            value_len: v.len(),
        })
        .collect()
}

/// # Safety
/// `b` must be a buffer Envoy lent for the current hook.
unsafe fn envoy_slice<'a>(b: EnvoyBuffer) -> &'a [u8] {
    if b.ptr.is_null() || b.len == 0 {
        &[]
    } else {
        // SAFETY: non-null, `len` bytes owned by Envoy and valid for the hook (caller contract).
        unsafe { std::slice::from_raw_parts(b.ptr, b.len) }
    }
}

impl Host for EnvoyHost {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.get_header(abi::header_type::REQUEST_HEADERS, name, 0)
    }
    fn request_header_at(&self, name: &str, index: usize) -> Option<&[u8]> {
        self.get_header(abi::header_type::REQUEST_HEADERS, name, index)
    }
    fn request_headers(&self) -> Vec<(&[u8], &[u8])> {
        // SAFETY: `fe` valid for this hook.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers_size(self.fe, abi::header_type::REQUEST_HEADERS)
        };
        let mut raw = vec![
            EnvoyHeader {
                key_ptr: std::ptr::null(),
                key_len: 0,
                value_ptr: std::ptr::null(),
                value_len: 0
            };
            n
        ];
        // SAFETY: `raw` has room for the `n` headers Envoy reported.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers(
                self.fe,
                abi::header_type::REQUEST_HEADERS,
                raw.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        raw.iter()
            .map(|hd| {
                // SAFETY: lent by Envoy for this hook; the slices borrow `self`.
                unsafe {
                    (
                        envoy_slice(EnvoyBuffer {
                            ptr: hd.key_ptr,
                            len: hd.key_len,
                        }),
                        envoy_slice(EnvoyBuffer {
                            ptr: hd.value_ptr,
                            len: hd.value_len,
                        }),
                    )
                }
            })
            .collect()
    }
    fn request_header_count(&self, name: &str) -> usize {
        self.header_count(abi::header_type::REQUEST_HEADERS, name)
    }
    fn set_request_header(&mut self, name: &str, value: &[u8]) {
        self.put_header(abi::header_type::REQUEST_HEADERS, name, ModuleBuffer::from_bytes(value))
    }
    fn remove_request_header(&mut self, name: &str) {
        // A null value removes the header (documented in the ABI header).
        self.put_header(abi::header_type::REQUEST_HEADERS, name, ModuleBuffer::NULL)
    }
    fn response_header(&self, name: &str) -> Option<&[u8]> {
        self.get_header(abi::header_type::RESPONSE_HEADERS, name, 0)
    }
    fn set_response_header(&mut self, name: &str, value: &[u8]) {
        self.put_header(
            abi::header_type::RESPONSE_HEADERS,
            name,
            ModuleBuffer::from_bytes(value),
        )
    }
    fn remove_response_header(&mut self, name: &str) {
        self.put_header(abi::header_type::RESPONSE_HEADERS, name, ModuleBuffer::NULL)
    }

    fn body_len(&self, side: Side) -> usize {
        let (buffered, received) = Self::body_types(side);
        if self.received_is_buffered(side) {
            self.body_size(buffered)
        } else {
            self.body_size(buffered) + self.body_size(received)
        }
    }

    fn read_body(&self, side: Side, out: &mut Vec<u8>) {
        let (buffered, received) = Self::body_types(side);
        self.append_chunks(buffered, out);
        if !self.received_is_buffered(side) {
            self.append_chunks(received, out);
        }
    }

    fn replace_body(&mut self, side: Side, data: &[u8]) {
        let (buffered, received) = Self::body_types(side);
        let received_is_buffered = self.received_is_buffered(side);
        // SAFETY: `fe` valid for this hook; `data` is copied by Envoy during `append_body`.
        unsafe {
            let b = abi::envoy_dynamic_module_callback_http_get_body_size(self.fe, buffered);
            abi::envoy_dynamic_module_callback_http_drain_body(self.fe, buffered, b);
            if !received_is_buffered {
                let r = abi::envoy_dynamic_module_callback_http_get_body_size(self.fe, received);
                abi::envoy_dynamic_module_callback_http_drain_body(self.fe, received, r);
            }
            let target = if received_is_buffered { buffered } else { received };
            abi::envoy_dynamic_module_callback_http_append_body(self.fe, target, ModuleBuffer::from_bytes(data));
        }
    }

    fn set_buffer_limit(&mut self, bytes: u64) {
        // SAFETY: `fe` valid for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_set_buffer_limit(self.fe, bytes) }
    }

    fn send_response(&mut self, reply: &Reply) {
        // The reply may finish the stream: metadata goes first, so the access log has it.
        self.flush_metadata();
        let headers = module_headers(reply.headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        // SAFETY: `fe` valid for this hook; headers, body and details outlive the call and are
        // copied by Envoy.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.fe,
                u32::from(reply.status),
                headers.as_ptr(),
                headers.len(),
                ModuleBuffer::from_bytes(&reply.body),
                ModuleBuffer::from_bytes(reply.details.as_bytes()),
            )
        }
    }

    fn set_metadata(&mut self, key: &str, value: &str) {
        let m = &mut self.metadata;
        let k = m.text.len();
        m.text.push_str(key);
        let v = m.text.len();
        m.text.push_str(value);
        m.spans.push((k, v, m.text.len()));
    }

    fn set_metadata_number(&mut self, key: &str, value: f64) {
        // SAFETY: `fe` valid for this hook; buffers copied by Envoy.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
                self.fe,
                ModuleBuffer::from_bytes(METADATA_NAMESPACE.as_bytes()),
                ModuleBuffer::from_bytes(key.as_bytes()),
                value,
            )
        }
    }

    fn http_callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, &'static str> {
        let hs = module_headers(headers.iter().map(|(k, v)| (k.as_bytes(), *v)));
        let mut id: u64 = 0;
        // SAFETY: `fe` valid for this hook; cluster, headers and body outlive the call and are
        // copied by Envoy; `id` is a valid out pointer.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_http_callout(
                self.fe,
                &mut id,
                ModuleBuffer::from_bytes(cluster.as_bytes()),
                hs.as_ptr(),
                hs.len(),
                ModuleBuffer::from_bytes(body),
                timeout_ms,
            )
        };
        match r {
            abi::callout_init::SUCCESS => Ok(id),
            abi::callout_init::CLUSTER_NOT_FOUND => Err("cluster not found"),
            abi::callout_init::MISSING_REQUIRED_HEADERS => Err("missing :method, :path or host"),
            abi::callout_init::DUPLICATE_CALLOUT_ID => Err("duplicate callout id"),
            abi::callout_init::CANNOT_CREATE_REQUEST => Err("cannot create the request (no healthy host?)"),
            _ => Err("callout refused"),
        }
    }

    fn refresh_route_cluster(&mut self) {
        // SAFETY: `fe` valid for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cluster_cache(self.fe) }
    }

    fn clear_route_cache(&mut self) {
        // SAFETY: `fe` valid for this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.fe) }
    }

    fn increment_counter(&mut self, id: usize, labels: &[&str], by: u64) {
        let mut bufs = [ModuleBuffer::NULL; 4];
        let n = labels.len().min(bufs.len());
        for (b, l) in bufs.iter_mut().zip(labels) {
            *b = ModuleBuffer::from_bytes(l.as_bytes());
        }
        // SAFETY: `fe` valid for this hook; `bufs[..n]` point at live label strings.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_increment_counter(self.fe, id, bufs.as_ptr(), n, by);
        }
    }

    fn attribute_string(&self, id: u32) -> Option<&[u8]> {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            len: 0,
        };
        // SAFETY: `fe` valid for this hook; `out` valid for writes.
        let ok = unsafe { abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(self.fe, id, &mut out) };
        // SAFETY: lent by Envoy for this hook; the slice borrows `self`.
        ok.then(|| unsafe { envoy_slice(out) })
    }

    fn attribute_bool(&self, id: u32) -> Option<bool> {
        let mut out = false;
        // SAFETY: `fe` valid for this hook; `out` valid for writes.
        let ok = unsafe { abi::envoy_dynamic_module_callback_http_filter_get_attribute_bool(self.fe, id, &mut out) };
        ok.then_some(out)
    }

    fn route_metadata(&self, key: &str) -> Option<&[u8]> {
        let mut out = EnvoyBuffer {
            ptr: std::ptr::null(),
            len: 0,
        };
        // SAFETY: `fe` valid for this hook; `out` valid for writes; buffers outlive the call.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_metadata_string(
                self.fe,
                abi::metadata_source::ROUTE,
                ModuleBuffer::from_bytes(METADATA_NAMESPACE.as_bytes()),
                ModuleBuffer::from_bytes(key.as_bytes()),
                &mut out,
            )
        };
        // SAFETY: lent by Envoy for this hook; the slice borrows `self`.
        ok.then(|| unsafe { envoy_slice(out) })
    }
}

/// Log through Envoy's `dynamic_modules` logger; formats only when the level is enabled.
pub fn log(level: Level, args: std::fmt::Arguments<'_>) {
    // SAFETY: plain value argument; callable from any thread.
    if !unsafe { abi::envoy_dynamic_module_callback_log_enabled(level.abi()) } {
        return;
    }
    let msg = std::fmt::format(args);
    // SAFETY: `msg` outlives the call; Envoy copies it.
    unsafe { abi::envoy_dynamic_module_callback_log(level.abi(), ModuleBuffer::from_bytes(msg.as_bytes())) }
}

/// Config-time access to Envoy (on the main thread, inside `config_new`).
pub struct ConfigHost {
    cfg: abi::ConfigEnvoyPtr,
}

impl ConfigHost {
    /// # Safety
    /// `cfg` must be the config pointer Envoy passed to `config_new`, used only during it.
    pub unsafe fn new(cfg: abi::ConfigEnvoyPtr) -> ConfigHost {
        ConfigHost { cfg }
    }

    /// Define a counter with label names; returns its id, or `None` if Envoy refused.
    pub fn define_counter(&mut self, name: &str, labels: &[&str]) -> Option<usize> {
        let bufs: Vec<ModuleBuffer> = labels.iter().map(|l| ModuleBuffer::from_bytes(l.as_bytes())).collect();
        let mut id = 0usize;
        // SAFETY: `cfg` valid during config_new; `bufs` and `name` outlive the call.
        let rc = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.cfg,
                ModuleBuffer::from_bytes(name.as_bytes()),
                bufs.as_ptr(),
                bufs.len(),
                &mut id,
            )
        };
        (rc == abi::METRICS_SUCCESS).then_some(id)
    }
}

impl Drop for EnvoyHost {
    fn drop(&mut self) {
        // Still inside the hook: the host never outlives it.
        self.flush_metadata();
    }
}
