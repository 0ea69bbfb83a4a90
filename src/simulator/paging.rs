//! The two paging schemes (docs/contracts.md, "Graph users listing" and "Token Admin PAT
//! listing") and their continuation tokens.
//!
//! Graph users: server-chosen, uneven page sizes; an opaque token only in the
//! `X-MS-ContinuationToken` header. Token Admin: client-chosen `pageSize` up to a cap; a GUID
//! token in the body. Both tokens are stateless (the position plus a keyed check value), so
//! a garbled, forged or foreign token is recognised and refused with 400.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::data::{SimUser, SubjectKind};
use super::hash::{hash_bytes, hash_parts, mix64};
use super::wire::{guid_from_u128, parse_guid};

/// Page sizes and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingConfig {
    /// Graph users page sizes, used in turn; `0` is an empty page that still carries a token.
    /// Pages count users after the `subjectTypes` filter.
    pub graph_page_sizes: Vec<usize>,
    /// Token Admin page size when the request has no `pageSize`.
    pub pat_default_page_size: usize,
    /// Largest `pageSize` accepted; above it the request gets 400.
    pub pat_max_page_size: usize,
    /// Serve fewer PATs than `pageSize` on some pages, and now and then an empty page with
    /// a token, so a client cannot infer the end from a short page.
    pub pat_uneven_pages: bool,
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig {
            graph_page_sizes: vec![500, 495, 33, 0, 500],
            pat_default_page_size: 20,
            pat_max_page_size: 100,
            pat_uneven_pages: false,
        }
    }
}

impl PagingConfig {
    /// The Graph page size for the `page`-th page (0-based). A cycle without any positive
    /// size would never finish, so it falls back to the service's usual 500.
    pub fn graph_page_size(&self, page: u32) -> usize {
        if !self.graph_page_sizes.iter().any(|s| *s > 0) {
            return 500;
        }
        self.graph_page_sizes[page as usize % self.graph_page_sizes.len()]
    }
}

/// `subjectTypes` as a bit set over [`SubjectKind`]. Unknown types (e.g. `imp`) match nobody.
pub fn subject_mask(subject_types: Option<&str>) -> u8 {
    let Some(list) = subject_types.filter(|s| !s.trim().is_empty()) else {
        return 0b1111;
    };
    list.split(',')
        .filter_map(|t| SubjectKind::from_prefix(t.trim()))
        .fold(0, |mask, kind| mask | kind_bit(kind))
}

fn kind_bit(kind: SubjectKind) -> u8 {
    match kind {
        SubjectKind::Aad => 1,
        SubjectKind::Msa => 2,
        SubjectKind::Svc => 4,
        SubjectKind::Acs => 8,
    }
}

/// Where the next Graph page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphCursor {
    /// Index into the org's full user list.
    pub next_index: u32,
    /// 0-based number of the next page (picks its size).
    pub page: u32,
    /// The `subjectTypes` filter the listing started with; a token is only good for it.
    pub mask: u8,
}

/// Fixed leading bytes that encode as `+/+/`: every token then needs URL-encoding, so a
/// client that pastes it raw into the query (`+` becomes a space) is caught.
const GRAPH_TOKEN_HEAD: [u8; 4] = [0xfb, 0xff, 0xbf, 0x01];

pub fn encode_graph_token(key: u64, cursor: GraphCursor) -> String {
    let mut bytes = Vec::with_capacity(20);
    bytes.extend_from_slice(&GRAPH_TOKEN_HEAD);
    bytes.extend_from_slice(&cursor.next_index.to_be_bytes());
    bytes.extend_from_slice(&cursor.page.to_be_bytes());
    bytes.push(cursor.mask);
    let check = hash_bytes(key, &bytes).to_be_bytes();
    bytes.extend_from_slice(&check[..7]);
    STANDARD.encode(bytes)
}

pub fn decode_graph_token(key: u64, token: &str) -> Option<GraphCursor> {
    let bytes = STANDARD.decode(token).ok()?;
    if bytes.len() != 20 || bytes[..4] != GRAPH_TOKEN_HEAD {
        return None;
    }
    let check = hash_bytes(key, &bytes[..13]).to_be_bytes();
    if bytes[13..] != check[..7] {
        return None;
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some(GraphCursor {
        next_index: word(4),
        page: word(8),
        mask: bytes[12],
    })
}

/// One Graph page: up to `size` users matching `mask` from `start` on, the index after the
/// last one taken, and whether any matching user remains after it.
pub fn graph_page(
    users: &[SimUser],
    start: usize,
    size: usize,
    mask: u8,
) -> (Vec<&SimUser>, usize, bool) {
    let matches = |u: &SimUser| mask & kind_bit(u.kind) != 0;
    let mut taken = Vec::with_capacity(size.min(users.len()));
    let mut next = start;
    while next < users.len() && taken.len() < size {
        if matches(&users[next]) {
            taken.push(&users[next]);
        }
        next += 1;
    }
    let more = users
        .get(next..)
        .is_some_and(|rest| rest.iter().any(matches));
    (taken, next, more)
}

/// Where the next Token Admin page starts, for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatCursor {
    /// Index into the user's PATs (24 bits on the wire).
    pub offset: u32,
    /// Page number, so two pages at the same offset (after an empty one) differ.
    pub ordinal: u8,
}

const PAT_OFFSET_BITS: u32 = 24;

/// The key of one listing's tokens: the same endpoint lists PATs and (`isPublic=true`) SSH
/// keys, and a token of one must be refused by the other. PAT tokens keep the org's key, so
/// they are the bytes they always were (faults are decided by hashing the request, token
/// included).
pub fn listing_key(key: u64, ssh_keys: bool) -> u64 {
    if ssh_keys {
        mix64(key ^ 0x55E4_0C0D_E5EE_D5A1)
    } else {
        key
    }
}

/// A GUID-shaped token bound to the user's descriptor.
pub fn encode_pat_token(key: u64, descriptor: &str, cursor: PatCursor) -> String {
    let position = (cursor.offset & ((1 << PAT_OFFSET_BITS) - 1))
        | (u32::from(cursor.ordinal) << PAT_OFFSET_BITS);
    let high = hash_parts(key, descriptor, &[u64::from(position)]);
    let mid = mix64(high);
    let mut v =
        (u128::from(high) << 64) | (u128::from(mid & 0xFFFF_FFFF_0000_0000)) | u128::from(position);
    // Version-4 layout, as the service's GUIDs have.
    v = (v & !(0xF << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    guid_from_u128(v)
}

pub fn decode_pat_token(key: u64, descriptor: &str, token: &str) -> Option<PatCursor> {
    let v = parse_guid(token)?;
    let position = v as u32;
    let cursor = PatCursor {
        offset: position & ((1 << PAT_OFFSET_BITS) - 1),
        ordinal: (position >> PAT_OFFSET_BITS) as u8,
    };
    (parse_guid(&encode_pat_token(key, descriptor, cursor)) == Some(v)).then_some(cursor)
}

/// How many PATs to put on a page: `requested`, or with uneven pages sometimes fewer and
/// now and then none (never twice running, so the listing always ends).
pub fn pat_page_size(
    key: u64,
    descriptor: &str,
    cursor: PatCursor,
    requested: usize,
    uneven: bool,
) -> usize {
    if !uneven {
        return requested;
    }
    let h = hash_parts(
        key,
        descriptor,
        &[u64::from(cursor.offset), u64::from(cursor.ordinal)],
    );
    if cursor.ordinal % 2 == 1 && h.is_multiple_of(5) {
        return 0;
    }
    let spread = (h >> 8) as usize % (requested / 2 + 1);
    (requested - spread).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_tokens_round_trip_and_need_url_encoding() {
        let c = GraphCursor {
            next_index: 1234,
            page: 3,
            mask: 3,
        };
        let t = encode_graph_token(9, c);
        assert!(t.contains('+') && t.contains('='), "{t}");
        assert_eq!(decode_graph_token(9, &t), Some(c));
        assert_eq!(decode_graph_token(10, &t), None, "other key");
        assert_eq!(
            decode_graph_token(9, &t.replace('+', " ")),
            None,
            "unencoded"
        );
        let mut garbled = t.clone().into_bytes();
        garbled[10] = if garbled[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            decode_graph_token(9, &String::from_utf8_lossy(&garbled)),
            None
        );
        assert_eq!(decode_graph_token(9, "abc"), None);
    }

    #[test]
    fn pat_tokens_are_guids_bound_to_the_descriptor() {
        let c = PatCursor {
            offset: 40,
            ordinal: 2,
        };
        let t = encode_pat_token(5, "aad.x", c);
        assert!(parse_guid(&t).is_some());
        assert_eq!(&t[14..15], "4");
        assert_eq!(decode_pat_token(5, "aad.x", &t), Some(c));
        assert_eq!(decode_pat_token(5, "aad.x", &t.to_uppercase()), Some(c));
        assert_eq!(decode_pat_token(5, "aad.y", &t), None);
        assert_eq!(
            decode_pat_token(5, "aad.x", "00000000-0000-0000-0000-000000000000"),
            None
        );
    }

    #[test]
    fn a_token_of_one_listing_is_refused_by_the_other() {
        let c = PatCursor {
            offset: 20,
            ordinal: 1,
        };
        let (pats, keys) = (listing_key(5, false), listing_key(5, true));
        assert_eq!(pats, 5, "PAT tokens are unchanged");
        let pat_token = encode_pat_token(pats, "aad.x", c);
        let key_token = encode_pat_token(keys, "aad.x", c);
        assert_ne!(pat_token, key_token);
        assert_eq!(decode_pat_token(keys, "aad.x", &key_token), Some(c));
        assert_eq!(decode_pat_token(keys, "aad.x", &pat_token), None);
        assert_eq!(decode_pat_token(pats, "aad.x", &key_token), None);
    }

    #[test]
    fn subject_mask_parses_csv() {
        assert_eq!(subject_mask(None), 0b1111);
        assert_eq!(subject_mask(Some("aad,msa")), 0b0011);
        assert_eq!(subject_mask(Some(" AAD , svc ")), 0b0101);
        assert_eq!(subject_mask(Some("imp")), 0);
    }

    #[test]
    fn graph_page_size_cycles_and_never_stalls() {
        let p = PagingConfig::default();
        let sizes: Vec<usize> = (0..6).map(|i| p.graph_page_size(i)).collect();
        assert_eq!(sizes, [500, 495, 33, 0, 500, 500]);
        let stalled = PagingConfig {
            graph_page_sizes: vec![0],
            ..PagingConfig::default()
        };
        assert_eq!(stalled.graph_page_size(0), 500);
    }

    #[test]
    fn uneven_pat_pages_never_return_two_empty_pages_in_a_row() {
        for offset in 0..200 {
            for ordinal in (0..=254u8).step_by(2) {
                let c = PatCursor { offset, ordinal };
                assert!(pat_page_size(1, "d", c, 20, true) >= 1);
            }
        }
        assert_eq!(
            pat_page_size(
                1,
                "d",
                PatCursor {
                    offset: 3,
                    ordinal: 1
                },
                20,
                false
            ),
            20
        );
    }
}
