package format

import (
	"errors"
	"fmt"
	"math/bits"
)

// The ranges of every quantity and amount posbridge reads or computes
// (docs/formats.md, "Numbers"). They lie far above any real stock or
// price and far enough below the 64-bit limit that sums of many records
// stay exact; a value outside its range is refused where it is read, and
// a computation that would leave it is an error, never a wrapped number.
const (
	// MaxQuantity bounds a quantity of units, either sign: a stock
	// figure, a transaction, an order or invoice line.
	MaxQuantity = 1_000_000_000
	// MaxAmount bounds an amount, either sign, in ten-thousandths:
	// 99,999,999,999.9999, a price, a line's extended price or a total.
	MaxAmount = 999_999_999_999_999
)

// ErrRange is a quantity or amount outside its range.
var ErrRange = errors.New("out of range")

// CheckQuantity fails for a quantity outside ±MaxQuantity.
func CheckQuantity(q int64) error {
	if q > MaxQuantity || q < -MaxQuantity {
		return fmt.Errorf("%w: %d is beyond ±%d", ErrRange, q, MaxQuantity)
	}
	return nil
}

// CheckAmount fails for an amount (ten-thousandths) outside ±MaxAmount.
func CheckAmount(a int64) error {
	if a > MaxAmount || a < -MaxAmount {
		return fmt.Errorf("%w: %s is beyond ±%s", ErrRange, FormatAmount(a), FormatAmount(MaxAmount))
	}
	return nil
}

// AddQuantity is a + b, or an ErrRange error when the sum leaves
// ±MaxQuantity.
func AddQuantity(a, b int64) (int64, error) {
	if err := CheckQuantity(a); err != nil {
		return 0, err
	}
	if err := CheckQuantity(b); err != nil {
		return 0, err
	}
	s := a + b
	return s, CheckQuantity(s)
}

// AddAmount is a + b in ten-thousandths, or an ErrRange error when the
// sum leaves ±MaxAmount.
func AddAmount(a, b int64) (int64, error) {
	if err := CheckAmount(a); err != nil {
		return 0, err
	}
	if err := CheckAmount(b); err != nil {
		return 0, err
	}
	s := a + b
	return s, CheckAmount(s)
}

// MulAmount is quantity × price (ten-thousandths), an extended price, or
// an ErrRange error when the product leaves ±MaxAmount.
func MulAmount(q, price int64) (int64, error) {
	neg := (q < 0) != (price < 0)
	hi, lo := bits.Mul64(abs(q), abs(price))
	if hi != 0 || lo > MaxAmount {
		return 0, fmt.Errorf("%w: %d × %s is beyond ±%s", ErrRange, q, FormatAmount(price), FormatAmount(MaxAmount))
	}
	v := int64(lo)
	if neg {
		v = -v
	}
	return v, nil
}

// abs is |v| as an unsigned number (MinInt64 included).
func abs(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}
