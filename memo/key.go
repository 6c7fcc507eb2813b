package memo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Keyer is implemented by argument types that name their own cache key.
// When an argument (or a value nested in it) implements Keyer, its
// CacheKey result, quoted, is its whole encoding: its fields are not
// looked at. CacheKey must be deterministic and must return distinct
// strings for values that must not share a cache entry.
type Keyer interface {
	CacheKey() string
}

// maxDepth bounds how deeply nested values are encoded: past it the value
// is refused with [ErrKeyTooDeep] (a pointer cycle, or a structure no one
// should use as a cache key).
const maxDepth = 64

// encFunc appends the canonical encoding of v to b. v is never a read-only
// value (see stripRO), so its methods and Interface may be called.
type encFunc func(b []byte, v reflect.Value, depth int) ([]byte, error)

var (
	keyerType    = reflect.TypeFor[Keyer]()
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// fastKind selects an allocation-free encoder for scalar argument types.
type fastKind uint8

const (
	fastNone fastKind = iota
	fastBool
	fastInt
	fastInt8
	fastInt16
	fastInt32
	fastInt64
	fastUint
	fastUint8
	fastUint16
	fastUint32
	fastUint64
	fastUintptr
	fastFloat32
	fastFloat64
	fastString
)

// keyEncoder encodes values of one argument type.
type keyEncoder struct {
	typ  reflect.Type
	fast fastKind // fastNone: use enc
	enc  encFunc
}

// newKeyEncoder checks t and compiles its encoder. Types that cannot be
// encoded (funcs, channels, unsafe pointers, anywhere inside t except
// behind an interface) give an error wrapping [ErrUnsupportedType].
func newKeyEncoder(t reflect.Type) (*keyEncoder, error) {
	c := &compiler{done: map[reflect.Type]*encFunc{}}
	enc, err := c.compile(t, true)
	if err != nil {
		return nil, err
	}
	return &keyEncoder{typ: t, fast: fastKindOf(t), enc: enc}, nil
}

// fastKindOf returns the fast path for t, if it has one: a scalar type
// without a CacheKey method, and not time.Duration (encoded by String).
func fastKindOf(t reflect.Type) fastKind {
	if t == durationType || t.Implements(keyerType) || reflect.PointerTo(t).Implements(keyerType) {
		return fastNone
	}
	switch t.Kind() {
	case reflect.Bool:
		return fastBool
	case reflect.Int:
		return fastInt
	case reflect.Int8:
		return fastInt8
	case reflect.Int16:
		return fastInt16
	case reflect.Int32:
		return fastInt32
	case reflect.Int64:
		return fastInt64
	case reflect.Uint:
		return fastUint
	case reflect.Uint8:
		return fastUint8
	case reflect.Uint16:
		return fastUint16
	case reflect.Uint32:
		return fastUint32
	case reflect.Uint64:
		return fastUint64
	case reflect.Uintptr:
		return fastUintptr
	case reflect.Float32:
		return fastFloat32
	case reflect.Float64:
		return fastFloat64
	case reflect.String:
		return fastString
	}
	return fastNone
}

// appendFast appends the encoding of the scalar at p, whose type has fast
// kind k. It produces exactly what the reflective encoder does.
func appendFast(b []byte, k fastKind, p unsafe.Pointer) []byte {
	switch k {
	case fastBool:
		return strconv.AppendBool(b, *(*bool)(p))
	case fastInt:
		return strconv.AppendInt(b, int64(*(*int)(p)), 10)
	case fastInt8:
		return strconv.AppendInt(b, int64(*(*int8)(p)), 10)
	case fastInt16:
		return strconv.AppendInt(b, int64(*(*int16)(p)), 10)
	case fastInt32:
		return strconv.AppendInt(b, int64(*(*int32)(p)), 10)
	case fastInt64:
		return strconv.AppendInt(b, *(*int64)(p), 10)
	case fastUint:
		return strconv.AppendUint(b, uint64(*(*uint)(p)), 10)
	case fastUint8:
		return strconv.AppendUint(b, uint64(*(*uint8)(p)), 10)
	case fastUint16:
		return strconv.AppendUint(b, uint64(*(*uint16)(p)), 10)
	case fastUint32:
		return strconv.AppendUint(b, uint64(*(*uint32)(p)), 10)
	case fastUint64:
		return strconv.AppendUint(b, *(*uint64)(p), 10)
	case fastUintptr:
		return strconv.AppendUint(b, uint64(*(*uintptr)(p)), 10)
	case fastFloat32:
		return appendFloat(b, float64(*(*float32)(p)), 32)
	case fastFloat64:
		return appendFloat(b, *(*float64)(p), 64)
	case fastString:
		return strconv.AppendQuote(b, *(*string)(p))
	}
	panic("memo: appendFast: no fast path")
}

// appendFloat writes the shortest decimal form that reads back as f, so
// distinct floats give distinct text (every NaN is "NaN"; -0 is "-0").
func appendFloat(b []byte, f float64, bits int) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// compiler builds encoders, once per type, tolerating recursive types.
type compiler struct {
	done map[reflect.Type]*encFunc // finished or in progress
}

// compile returns the encoder of t. top marks the argument type itself:
// a struct argument is written as name=value pairs without braces.
func (c *compiler) compile(t reflect.Type, top bool) (encFunc, error) {
	if !top {
		if p, ok := c.done[t]; ok {
			// t is finished, or being compiled further up (a recursive
			// type): call through the pointer, which is set by then.
			return func(b []byte, v reflect.Value, d int) ([]byte, error) { return (*p)(b, v, d) }, nil
		}
	}
	p := new(encFunc)
	if !top {
		c.done[t] = p
	}
	enc, err := c.build(t, top)
	if err != nil {
		return nil, err
	}
	*p = enc
	return enc, nil
}

func unsupported(t reflect.Type, why string) error {
	return fmt.Errorf("%w: %s (%s)", ErrUnsupportedType, t, why)
}

func (c *compiler) build(t reflect.Type, top bool) (encFunc, error) {
	switch {
	case t.Implements(keyerType):
		return encKeyer, nil
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(keyerType):
		return encAddrKeyer, nil
	case t == timeType:
		return encTime, nil
	case t == durationType:
		return encDuration, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) { return strconv.AppendBool(b, v.Bool()), nil }, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) { return strconv.AppendInt(b, v.Int(), 10), nil }, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			return strconv.AppendUint(b, v.Uint(), 10), nil
		}, nil
	case reflect.Float32, reflect.Float64:
		bits := t.Bits()
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) { return appendFloat(b, v.Float(), bits), nil }, nil
	case reflect.Complex64, reflect.Complex128:
		bits := t.Bits()
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) {
			return append(b, strconv.FormatComplex(v.Complex(), 'g', -1, bits)...), nil
		}, nil
	case reflect.String:
		return func(b []byte, v reflect.Value, _ int) ([]byte, error) { return strconv.AppendQuote(b, v.String()), nil }, nil
	case reflect.Slice:
		if isByte(t.Elem()) {
			return encBytes, nil
		}
		return c.list(t, true)
	case reflect.Array:
		if isByte(t.Elem()) {
			return encByteArray, nil
		}
		return c.list(t, false)
	case reflect.Map:
		return c.mapEnc(t)
	case reflect.Struct:
		return c.structEnc(t, top)
	case reflect.Pointer:
		elem, err := c.compile(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		return func(b []byte, v reflect.Value, d int) ([]byte, error) {
			if v.IsNil() {
				return append(b, "nil"...), nil
			}
			if d >= maxDepth {
				return nil, ErrKeyTooDeep
			}
			return elem(b, v.Elem(), d+1)
		}, nil
	case reflect.Interface:
		return newIfaceEnc().enc, nil
	case reflect.Func:
		return nil, unsupported(t, "a func")
	case reflect.Chan:
		return nil, unsupported(t, "a channel")
	case reflect.UnsafePointer:
		return nil, unsupported(t, "an unsafe pointer")
	}
	return nil, unsupported(t, "kind "+t.Kind().String())
}

// isByte reports whether t is a byte type encoded as part of a byte string:
// kind uint8 without a CacheKey method of its own.
func isByte(t reflect.Type) bool {
	return t.Kind() == reflect.Uint8 && !t.Implements(keyerType) && !reflect.PointerTo(t).Implements(keyerType)
}

func encKeyer(b []byte, v reflect.Value, _ int) ([]byte, error) {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return append(b, "nil"...), nil
	}
	return strconv.AppendQuote(b, v.Interface().(Keyer).CacheKey()), nil
}

func encAddrKeyer(b []byte, v reflect.Value, _ int) ([]byte, error) {
	return strconv.AppendQuote(b, addressable(v).Addr().Interface().(Keyer).CacheKey()), nil
}

// encTime writes the instant in UTC with nanoseconds (RFC 3339): times
// that are Equal share a key whatever their location or monotonic reading.
func encTime(b []byte, v reflect.Value, _ int) ([]byte, error) {
	return v.Interface().(time.Time).UTC().AppendFormat(b, time.RFC3339Nano), nil
}

func encDuration(b []byte, v reflect.Value, _ int) ([]byte, error) {
	return append(b, time.Duration(v.Int()).String()...), nil
}

func encBytes(b []byte, v reflect.Value, _ int) ([]byte, error) {
	if v.IsNil() {
		return append(b, "nil"...), nil
	}
	return strconv.AppendQuote(b, string(v.Bytes())), nil
}

func encByteArray(b []byte, v reflect.Value, _ int) ([]byte, error) {
	b = append(b, "0x"...)
	for i := range v.Len() {
		b = hex.AppendEncode(b, []byte{byte(v.Index(i).Uint())})
	}
	return b, nil
}

// list encodes slices ("nil" or "[a,b]") and arrays ("[a,b]").
func (c *compiler) list(t reflect.Type, nilable bool) (encFunc, error) {
	elem, err := c.compile(t.Elem(), false)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, t)
	}
	return func(b []byte, v reflect.Value, d int) ([]byte, error) {
		if nilable && v.IsNil() {
			return append(b, "nil"...), nil
		}
		if d >= maxDepth {
			return nil, ErrKeyTooDeep
		}
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = elem(b, v.Index(i), d+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}, nil
}

// mapEnc encodes maps as "{k:v,...}" sorted by the encoded keys, or "nil".
func (c *compiler) mapEnc(t reflect.Type) (encFunc, error) {
	kenc, err := c.compile(t.Key(), false)
	if err != nil {
		return nil, fmt.Errorf("%w (key of %s)", err, t)
	}
	venc, err := c.compile(t.Elem(), false)
	if err != nil {
		return nil, fmt.Errorf("%w (value of %s)", err, t)
	}
	return func(b []byte, v reflect.Value, d int) ([]byte, error) {
		if v.IsNil() {
			return append(b, "nil"...), nil
		}
		if d >= maxDepth {
			return nil, ErrKeyTooDeep
		}
		type kv struct{ k, v []byte }
		pairs := make([]kv, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := kenc(nil, it.Key(), d+1)
			if err != nil {
				return nil, err
			}
			val, err := venc(nil, it.Value(), d+1)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, kv{k, val})
		}
		slices.SortFunc(pairs, func(x, y kv) int {
			if c := strings.Compare(string(x.k), string(y.k)); c != 0 {
				return c
			}
			return strings.Compare(string(x.v), string(y.v)) // NaN keys: several equal encodings
		})
		b = append(b, '{')
		for i, p := range pairs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p.k...)
			b = append(b, ':')
			b = append(b, p.v...)
		}
		return append(b, '}'), nil
	}, nil
}

// structEnc encodes structs field by field in declaration order:
// "{A=1,B=\"x\"}", or "A=1,B=\"x\"" for the argument itself. The tag
// `cache:"-"` skips a field and `cache:"name"` renames it. Unexported fields
// are encoded too (they are part of the value); blank (_) fields are not.
func (c *compiler) structEnc(t reflect.Type, top bool) (encFunc, error) {
	type field struct {
		index int
		label string // "name="
		enc   encFunc
	}
	var fields []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Name == "_" {
			continue
		}
		name := sf.Name
		if tag, ok := sf.Tag.Lookup("cache"); ok {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		enc, err := c.compile(sf.Type, false)
		if err != nil {
			return nil, fmt.Errorf("%w (field %s of %s)", err, sf.Name, t)
		}
		fields = append(fields, field{index: i, label: name + "=", enc: enc})
	}
	return func(b []byte, v reflect.Value, d int) ([]byte, error) {
		if d >= maxDepth {
			return nil, ErrKeyTooDeep
		}
		v = addressable(v)
		if !top {
			b = append(b, '{')
		}
		for i, f := range fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, f.label...)
			var err error
			if b, err = f.enc(b, stripRO(v.Field(f.index)), d+1); err != nil {
				return nil, err
			}
		}
		if !top {
			b = append(b, '}')
		}
		return b, nil
	}, nil
}

// addressable returns v, or an addressable copy of it.
func addressable(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return v
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	return c
}

// stripRO returns a field value of an addressable struct without the
// read-only mark reflect puts on unexported fields, so that its methods
// (CacheKey, time.Time's) can be called. Only reads follow.
func stripRO(f reflect.Value) reflect.Value {
	if f.CanInterface() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// ifaceEnc encodes interface values as "nil" or "T(value)", with T the
// dynamic type, so that int(1) and int64(1) differ. Dynamic types are
// checked when met: an unsupported one gives an error wrapping
// ErrUnsupportedType at call time.
type ifaceEnc struct {
	encs sync.Map // reflect.Type -> encFunc, or error
}

func newIfaceEnc() *ifaceEnc { return &ifaceEnc{} }

func (ie *ifaceEnc) enc(b []byte, v reflect.Value, d int) ([]byte, error) {
	if v.IsNil() {
		return append(b, "nil"...), nil
	}
	if d >= maxDepth {
		return nil, ErrKeyTooDeep
	}
	e := v.Elem()
	t := e.Type()
	var enc encFunc
	if x, ok := ie.encs.Load(t); ok {
		if err, bad := x.(error); bad {
			return nil, err
		}
		enc = x.(encFunc)
	} else {
		c := &compiler{done: map[reflect.Type]*encFunc{}}
		f, err := c.compile(t, false)
		if err != nil {
			ie.encs.Store(t, err)
			return nil, err
		}
		ie.encs.Store(t, f)
		enc = f
	}
	b = append(b, t.String()...)
	b = append(b, '(')
	b, err := enc(b, e, d+1)
	if err != nil {
		return nil, err
	}
	return append(b, ')'), nil
}

// errKeyPanic wraps a panic raised while encoding (a CacheKey method that
// panicked).
var errKeyPanic = errors.New("memo: panic while encoding the argument")
