//! A fake [`Host`] for unit tests: headers and bodies in plain maps, and a record of every
//! effect (replies, metadata, counters) for assertions.

use crate::envoy::{Host, Side};
use mcp_policy_core::reply::Reply;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct FakeHost {
    pub request_headers: Vec<(String, Vec<u8>)>,
    pub response_headers: Vec<(String, Vec<u8>)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub replies: Vec<Reply>,
    pub metadata: BTreeMap<String, String>,
    pub counters: BTreeMap<(usize, Vec<String>), u64>,
    pub buffer_limit: Option<u64>,
    pub route_cache_cleared: bool,
    pub route_cluster_refreshed: bool,
    pub attributes: BTreeMap<u32, Vec<u8>>,
    pub route_metadata: BTreeMap<String, Vec<u8>>,
    /// Callouts started: (cluster, headers, body).
    pub callouts: Vec<Callout>,
}

/// A callout the filter started: (cluster, headers, body).
pub type Callout = (String, Vec<(String, Vec<u8>)>, Vec<u8>);

impl FakeHost {
    pub fn post(body: &str) -> FakeHost {
        FakeHost {
            request_headers: vec![
                (":method".into(), b"POST".to_vec()),
                (":path".into(), b"/mcp".to_vec()),
                ("content-type".into(), b"application/json".to_vec()),
            ],
            request_body: body.as_bytes().to_vec(),
            ..FakeHost::default()
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> FakeHost {
        self.request_headers.retain(|(n, _)| n != k);
        self.request_headers.push((k.into(), v.as_bytes().to_vec()));
        self
    }

    pub fn request_header_value(&self, name: &str) -> Option<&str> {
        get(&self.request_headers, name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn response_header_value(&self, name: &str) -> Option<&str> {
        get(&self.response_headers, name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn counter(&self, id: usize, labels: &[&str]) -> u64 {
        let key = (id, labels.iter().map(|s| s.to_string()).collect());
        self.counters.get(&key).copied().unwrap_or(0)
    }
}

fn get<'a>(map: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    map.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

impl Host for FakeHost {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        get(&self.request_headers, name)
    }
    fn request_header_count(&self, name: &str) -> usize {
        self.request_headers.iter().filter(|(k, _)| k == name).count()
    }
    fn request_header_at(&self, name: &str, index: usize) -> Option<&[u8]> {
        self.request_headers
            .iter()
            .filter(|(k, _)| k == name)
            .nth(index)
            .map(|(_, v)| v.as_slice())
    }
    fn request_headers(&self) -> Vec<(&[u8], &[u8])> {
        self.request_headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_slice()))
            .collect()
    }
    fn set_request_header(&mut self, name: &str, value: &[u8]) {
        self.remove_request_header(name);
        self.request_headers.push((name.into(), value.to_vec()));
    }
    fn remove_request_header(&mut self, name: &str) {
        self.request_headers.retain(|(k, _)| k != name);
    }
    fn response_header(&self, name: &str) -> Option<&[u8]> {
        get(&self.response_headers, name)
    }
    fn set_response_header(&mut self, name: &str, value: &[u8]) {
        self.remove_response_header(name);
        self.response_headers.push((name.into(), value.to_vec()));
    }
    fn remove_response_header(&mut self, name: &str) {
        self.response_headers.retain(|(k, _)| k != name);
    }
    fn body_len(&self, side: Side) -> usize {
        match side {
            Side::Request => self.request_body.len(),
            Side::Response => self.response_body.len(),
        }
    }
    fn read_body(&self, side: Side, out: &mut Vec<u8>) {
        match side {
            Side::Request => out.extend_from_slice(&self.request_body),
            Side::Response => out.extend_from_slice(&self.response_body),
        }
    }
    fn replace_body(&mut self, side: Side, data: &[u8]) {
        match side {
            Side::Request => self.request_body = data.to_vec(),
            Side::Response => self.response_body = data.to_vec(),
        }
    }
    fn set_buffer_limit(&mut self, bytes: u64) {
        self.buffer_limit = Some(bytes);
    }
    fn send_response(&mut self, reply: &Reply) {
        self.replies.push(reply.clone());
    }
    fn set_metadata(&mut self, key: &str, value: &str) {
        self.metadata.insert(key.into(), value.into());
    }
    fn set_metadata_number(&mut self, key: &str, value: f64) {
        self.metadata.insert(key.into(), value.to_string());
    }
    fn refresh_route_cluster(&mut self) {
        self.route_cluster_refreshed = true;
    }

    fn clear_route_cache(&mut self) {
        self.route_cache_cleared = true;
    }
    fn increment_counter(&mut self, id: usize, labels: &[&str], by: u64) {
        *self
            .counters
            .entry((id, labels.iter().map(|s| s.to_string()).collect()))
            .or_default() += by;
    }
    fn attribute_string(&self, id: u32) -> Option<&[u8]> {
        self.attributes.get(&id).map(|v| v.as_slice())
    }
    fn attribute_bool(&self, _id: u32) -> Option<bool> {
        None
    }
    fn http_callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<u64, &'static str> {
        if cluster == "missing" {
            return Err("cluster not found");
        }
        self.callouts.push((
            cluster.to_owned(),
            headers.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect(),
            body.to_vec(),
        ));
        Ok(self.callouts.len() as u64)
    }

    fn route_metadata(&self, key: &str) -> Option<&[u8]> {
        self.route_metadata.get(key).map(|v| v.as_slice())
    }
}
