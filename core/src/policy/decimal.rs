//! Exact comparison of JSON numbers by their decimal text: `9007199254740993` is not
//! `9007199254740992` (as it would be through `f64`), and `1`, `1.0`, `10e-1` and `0.1e1` are
//! equal. No big-number arithmetic: a number is its sign, its significant digits and the
//! position of the decimal point, compared digit by digit without allocating.

use std::cmp::Ordering;

/// A JSON number, borrowed from its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decimal<'a> {
    negative: bool,
    /// Significant digits: no leading zeros, possibly trailing zeros, possibly split by the
    /// decimal point (`int` then `frac`, as written); empty for zero.
    int: &'a [u8],
    frac: &'a [u8],
    /// Leading zeros to skip at the start of `int ++ frac`.
    skip: usize,
    /// The value is `0.d1d2d3… × 10^scale` with `d1` the first significant digit.
    scale: i64,
}

impl<'a> Decimal<'a> {
    /// Read JSON number text (`-?int(.frac)?([eE][+-]?exp)?`); `None` if it is not one.
    pub(crate) fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let b = text.trim().as_bytes();
        let (negative, b) = match b.split_first()? {
            (b'-', rest) => (true, rest),
            _ => (false, b),
        };
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if int_len == 0 {
            return None;
        }
        let (int, mut rest) = b.split_at(int_len);
        let mut frac: &[u8] = &[];
        if let Some((b'.', after)) = rest.split_first() {
            let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            (frac, rest) = after.split_at(n);
        }
        let mut exp: i64 = 0;
        if let Some((b'e' | b'E', after)) = rest.split_first() {
            let (neg, digits) = match after.split_first()? {
                (b'-', d) => (true, d),
                (b'+', d) => (false, d),
                _ => (false, after),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for &d in digits {
                exp = exp.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            }
            if neg {
                exp = -exp;
            }
            rest = &[];
        }
        if !rest.is_empty() {
            return None;
        }
        let skip = int.iter().chain(frac).take_while(|&&c| c == b'0').count();
        let int_len = i64::try_from(int.len()).ok()?;
        let skip_i = i64::try_from(skip).ok()?;
        Some(Decimal {
            negative,
            int,
            frac,
            skip,
            scale: int_len.checked_add(exp)?.checked_sub(skip_i)?,
        })
    }

    fn digits(&self) -> impl Iterator<Item = u8> + 'a {
        self.int.iter().chain(self.frac).copied().skip(self.skip)
    }

    fn is_zero(&self) -> bool {
        self.skip == self.int.len() + self.frac.len()
    }

    /// Whether the value is a whole number (`3`, `3.0`, `3e2`, `300e-2`).
    pub(crate) fn is_integer(&self) -> bool {
        if self.is_zero() {
            return true;
        }
        // Digits after the first `scale` significant ones must all be zero.
        let whole = usize::try_from(self.scale.max(0)).unwrap_or(usize::MAX);
        self.digits().skip(whole).all(|d| d == b'0') && self.scale > 0
    }

    /// Exact numeric order.
    pub(crate) fn cmp(&self, other: &Decimal<'_>) -> Ordering {
        let (a0, b0) = (self.is_zero(), other.is_zero());
        let sign = |d: &Decimal<'_>, zero: bool| {
            if zero {
                0
            } else if d.negative {
                -1
            } else {
                1
            }
        };
        let (sa, sb) = (sign(self, a0), sign(other, b0));
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        let magnitude = self.scale.cmp(&other.scale).then_with(|| {
            let mut a = self.digits();
            let mut b = other.digits();
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return Ordering::Equal,
                    (x, y) => match x.unwrap_or(b'0').cmp(&y.unwrap_or(b'0')) {
                        Ordering::Equal => {}
                        o => return o,
                    },
                }
            }
        });
        if sa < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        let (Some(x), Some(y)) = (Decimal::parse(a), Decimal::parse(b)) else {
            panic!("not numbers: {a} {b}");
        };
        x.cmp(&y)
    }

    #[test]
    fn integers_above_two_to_the_53_do_not_collide() {
        assert_eq!(cmp("9007199254740993", "9007199254740992"), Ordering::Greater);
        assert_eq!(cmp("-9007199254740993", "-9007199254740992"), Ordering::Less);
        assert_eq!(cmp("18446744073709551617", "18446744073709551616"), Ordering::Greater);
    }

    #[test]
    fn equal_values_written_differently_are_equal() {
        for (a, b) in [
            ("1", "1.0"),
            ("1e3", "1000"),
            ("0.1e1", "10e-1"),
            ("0", "-0.0"),
            ("0", "0e99"),
            ("1.500", "15E-1"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} {b}");
        }
    }

    #[test]
    fn order_follows_sign_then_magnitude_then_digits() {
        assert_eq!(cmp("-1", "0"), Ordering::Less);
        assert_eq!(cmp("0.001", "0"), Ordering::Greater);
        assert_eq!(cmp("99", "100"), Ordering::Less);
        assert_eq!(cmp("-99", "-100"), Ordering::Greater);
        assert_eq!(cmp("0.1000000000000000000001", "0.1"), Ordering::Greater);
        assert_eq!(cmp("100.5", "100"), Ordering::Greater);
    }

    #[test]
    fn integers_are_told_from_fractions_exactly() {
        for t in ["3", "3.0", "3e2", "300e-2", "0", "-0.0", "9007199254740993"] {
            assert!(Decimal::parse(t).is_some_and(|d| d.is_integer()), "{t}");
        }
        for t in ["3.5", "1e-1", "0.5", "9007199254740993.5"] {
            assert!(Decimal::parse(t).is_some_and(|d| !d.is_integer()), "{t}");
        }
    }

    #[test]
    fn text_that_is_not_a_json_number_is_refused() {
        for t in [
            "",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "0x10",
            "1 2",
            "+1",
            "1e99999999999999999999",
        ] {
            assert!(Decimal::parse(t).is_none(), "{t:?}");
        }
    }
}
