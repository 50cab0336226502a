// Command quantity prints what k8s.io/apimachinery's resource.ParseQuantity makes
// of each input line, for the differential test of energysched.core.quantity
// (tests/unit/core/test_core_quantity_go.py).
//
// Input: one quantity per line, hex-encoded (so that any byte string, including
// newlines, survives the pipe). Output, one line per input:
//
//	ok <unscaled> <scale> <value> <milli>   exact value = unscaled * 10^-scale
//	err <message>
//
// value and milli are Value() and MilliValue(), printed only when the exact
// value is small enough for them to be defined (|v| < 2^53 units), else "-".
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"

	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	limit := new(big.Int).Lsh(big.NewInt(1), 53)
	for in.Scan() {
		raw, err := hex.DecodeString(in.Text())
		if err != nil {
			fmt.Fprintf(out, "err bad hex: %v\n", err)
			continue
		}
		q, err := resource.ParseQuantity(string(raw))
		if err != nil {
			fmt.Fprintf(out, "err %v\n", err)
			continue
		}
		// Value and MilliValue first: AsDec converts the int64 fast-path form, and
		// kube-scheduler calls them on the quantity as parsed.
		v, m := q.Value(), q.MilliValue()
		d := q.AsDec()
		unscaled := d.UnscaledBig()
		scale := int64(d.Scale())
		value, milli := "-", "-"
		// |v| < 2^53 units: both conversions are well defined (no int64 overflow).
		small := false
		if scale >= 0 {
			small = new(big.Int).Abs(unscaled).Cmp(limit) < 0
		} else if scale > -20 {
			v := new(big.Int).Mul(unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(-scale), nil))
			small = v.Abs(v).Cmp(limit) < 0
		}
		if small {
			value = fmt.Sprint(v)
			milli = fmt.Sprint(m)
		}
		fmt.Fprintf(out, "ok %s %d %s %s\n", unscaled.String(), scale, value, milli)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
