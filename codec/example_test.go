package codec_test

import (
	"errors"
	"fmt"

	"github.com/cachekit/cachekit/codec"
)

func ExampleRaw() {
	data, err := codec.Raw.Marshal("hello") // no copy: the string's own bytes
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", data)

	var s string
	if err := codec.Raw.Unmarshal(data, &s); err != nil {
		panic(err)
	}
	fmt.Println(s)

	_, err = codec.Raw.Marshal(42)
	fmt.Println(err)
	// Output:
	// "hello"
	// hello
	// codec: raw: cannot marshal int: codec: unsupported type
}

func ExampleJSON() {
	type user struct {
		Name  string
		Roles []string
	}
	data, err := codec.JSON.Marshal(user{Name: "ada", Roles: []string{"admin"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))

	var u user
	if err := codec.JSON.Unmarshal(data, &u); err != nil {
		panic(err)
	}
	fmt.Println(u.Name, u.Roles)

	err = codec.JSON.Unmarshal(data[:len(data)-1], &u)
	fmt.Println(errors.Is(err, codec.ErrDecode))
	// Output:
	// {"Name":"ada","Roles":["admin"]}
	// ada [admin]
	// true
}

func ExampleGob() {
	type point struct{ X, Y int }
	data, err := codec.Gob.Marshal(point{X: 1, Y: 2})
	if err != nil {
		panic(err)
	}
	var p point
	if err := codec.Gob.Unmarshal(data, &p); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", p)
	// Output:
	// {X:1 Y:2}
}
