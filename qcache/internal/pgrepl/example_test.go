package pgrepl_test

import (
	"encoding/hex"
	"fmt"

	"github.com/cachekit/cachekit/qcache/internal/pgrepl"
)

// Decode turns the Data of an XLogData into a typed message.
func ExampleDecode() {
	// An Insert into relation 16385 of the row (42, NULL, 'hi').
	data, _ := hex.DecodeString("49" + "00004001" + "4e" + "0003" +
		"74" + "00000002" + "3432" +
		"6e" +
		"74" + "00000002" + "6869")
	m, err := pgrepl.Decode(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch m := m.(type) {
	case *pgrepl.Insert:
		fmt.Println("insert into", m.RelationID)
		for _, c := range m.New {
			fmt.Printf("  %c %q\n", c.Kind, c.Data)
		}
	}
	// Output:
	// insert into 16385
	//   t "42"
	//   n ""
	//   t "hi"
}

// LSNs print and parse as PostgreSQL writes them.
func ExampleParseLSN() {
	l, err := pgrepl.ParseLSN("16/B374D848")
	fmt.Println(uint64(l), err, l+8)
	// Output: 97500059720 <nil> 16/B374D850
}
