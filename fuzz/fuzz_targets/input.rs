//! Reads fuzzer bytes as small numbers; past the end every read is 0.
#![allow(dead_code)]

pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    pub fn done(&self) -> bool {
        self.0.is_empty()
    }
    /// One of `choices` (by the next byte).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.u8() as usize % choices.len()]
    }
    /// A ggml type number: mostly known ones, sometimes anything.
    pub fn ty(&mut self) -> i32 {
        match self.u8() % 16 {
            0..=3 => 0,
            4..=5 => 1,
            6..=7 => 2,
            8..=9 => 8,
            10..=11 => 26,
            12 => 27,
            13 => 3,
            14 => -1,
            _ => self.u32() as i32,
        }
    }
    /// A dimension: mostly small, sometimes 0, negative or huge.
    pub fn dim(&mut self) -> i64 {
        match self.u8() % 24 {
            0 => 0,
            1 => -1,
            2 => i64::MAX,
            3 => 1 << 33,
            4 => self.u64() as i64,
            5..=8 => 1,
            9..=12 => 32,
            13 => 64,
            14 => 33,
            15 => 2,
            16 => 3,
            17 => 4,
            18 => 8,
            19 => 16,
            _ => i64::from(self.u8() % 70),
        }
    }
    /// An f32 from a short list of interesting values, or any bits.
    pub fn f32(&mut self) -> f32 {
        match self.u8() % 12 {
            0 => 0.0,
            1 => 1.0,
            2 => -1.0,
            3 => f32::NAN,
            4 => f32::INFINITY,
            5 => f32::NEG_INFINITY,
            6 => 1e-6,
            7 => 10000.0,
            8 => 0.5,
            9 => f32::MIN_POSITIVE,
            _ => f32::from_bits(self.u32()),
        }
    }
}
