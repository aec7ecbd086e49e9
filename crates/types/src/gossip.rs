//! The message in which validators gossip the readings they admitted to each other (a node's
//! p2p channel `READINGS`): a count (u32), then for each reading the seq its device sent
//! before it as far as the sender knew (u64), the reading's length (u16) and its bytes as the
//! device signed them. Integers are big-endian. Nothing may follow the last reading.
//!
//! Decoding checks only the framing; each reading is then decoded and checked as any
//! submitted reading is, its signature included.

use crate::reading::MAX_READING_BYTES;
use bytes::{Buf as _, BufMut as _};

/// Most readings in one gossip message.
pub const GOSSIP_BATCH_READINGS: usize = 512;

/// Encodes a batch of gossiped readings, each given as (seq its device sent before it, bytes).
/// The caller keeps the batch within [GOSSIP_BATCH_READINGS] and each reading within
/// [MAX_READING_BYTES], as every reading it admitted is.
pub fn encode_readings<'a>(batch: impl ExactSizeIterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + batch.len() * 256);
    out.put_u32(batch.len() as u32);
    for (after, bytes) in batch {
        out.put_u64(after);
        out.put_u16(bytes.len() as u16);
        out.put_slice(bytes);
    }
    out
}

/// Decodes a batch of gossiped readings into (seq sent before, bytes); `None` if the message is
/// malformed, holds more than [GOSSIP_BATCH_READINGS] readings or one longer than
/// [MAX_READING_BYTES], or has bytes after its last reading.
pub fn decode_readings(mut msg: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    if msg.remaining() < 4 {
        return None;
    }
    let n = msg.get_u32() as usize;
    if n > GOSSIP_BATCH_READINGS {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if msg.remaining() < 10 {
            return None;
        }
        let after = msg.get_u64();
        let len = msg.get_u16() as usize;
        if len > MAX_READING_BYTES || msg.remaining() < len {
            return None;
        }
        out.push((after, &msg[..len]));
        msg.advance(len);
    }
    msg.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_readings_decodes_to_what_was_sent_and_nothing_malformed_decodes() {
        let (a, b) = (vec![1u8; 40], vec![2u8; 300]);
        let batch = [(0u64, a.as_slice()), (1, b.as_slice())];
        let msg = encode_readings(batch.iter().copied());
        assert_eq!(decode_readings(&msg).expect("decodes"), batch);
        // Cut anywhere, or with a byte too many, it is refused.
        for cut in 0..msg.len() {
            assert!(decode_readings(&msg[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = msg.clone();
        longer.push(0);
        assert!(decode_readings(&longer).is_none());
        // More readings than a batch holds, by its count alone.
        let mut many = (GOSSIP_BATCH_READINGS as u32 + 1).to_be_bytes().to_vec();
        many.extend_from_slice(&msg[4..]);
        assert!(decode_readings(&many).is_none());
        // A reading longer than a reading may be.
        let mut huge = 1u32.to_be_bytes().to_vec();
        huge.extend_from_slice(&0u64.to_be_bytes());
        huge.extend_from_slice(&u16::MAX.to_be_bytes());
        huge.extend(std::iter::repeat_n(0u8, u16::MAX as usize));
        assert!(decode_readings(&huge).is_none());
        // The most a batch may hold, each as long as a reading may be, decodes.
        let longest = vec![3u8; MAX_READING_BYTES];
        let full = vec![(7u64, longest.as_slice()); GOSSIP_BATCH_READINGS];
        let msg = encode_readings(full.iter().copied());
        assert_eq!(decode_readings(&msg).expect("decodes"), full);
    }
}
