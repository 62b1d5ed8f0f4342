package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"

	"github.com/posbridge/posbridge/internal/fsx"
)

// MaxFileSize is the size of the largest config file read: a config is
// a few KiB, and a file far larger is not one.
const MaxFileSize = 1 << 20

// readFile reads the config file: a regular file (a named pipe would
// block the read) in UTF-8, of at most MaxFileSize bytes.
func readFile(file string) ([]byte, error) {
	data, err := fsx.ReadText(file, MaxFileSize)
	if errors.Is(err, fsx.ErrTooLarge) {
		return nil, fmt.Errorf("larger than %d KiB: not a configuration file", MaxFileSize>>10)
	}
	return data, err
}

// namedSections are the settings whose keys are names the user chose,
// and what one of them names.
var namedSections = map[string]string{"sites": "site", "partners": "partner", "jobs": "job"}

// checkKeys finds the keys of the YAML file that would be read other than
// written: keys are read in any letter case (data_dir and DATA_DIR are one
// key, and only one of the two values would be kept), and a key with a
// "." would be read as a path of keys. Syntax errors are left to the
// parser. It returns the scalar values as written, by key path in lower
// case.
func checkKeys(file string, data []byte) (literals map[string]string, problems []error) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil, nil
	}
	literals = map[string]string{}
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%w: %s: line %d: %s", ErrInvalid, file, line, fmt.Sprintf(format, args...)))
	}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for i, c := range n.Content {
				p := path
				if n.Kind == yaml.SequenceNode {
					p = path + "[" + strconv.Itoa(i) + "]"
				}
				walk(c, p, depth)
			}
		case yaml.ScalarNode:
			literals[strings.ToLower(path)] = n.Value
		case yaml.MappingNode:
			seen := map[string]*yaml.Node{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind != yaml.ScalarNode || k.Value == "<<" {
					continue
				}
				key := keyPath(path, k.Value)
				if prev, ok := seen[strings.ToLower(k.Value)]; ok && prev.Value != k.Value {
					bad(k.Line, "%s and %s (line %d) are one key in two spellings: letter case does not count in keys; keep one",
						key, keyPath(path, prev.Value), prev.Line)
				}
				seen[strings.ToLower(k.Value)] = k
				if strings.Contains(k.Value, ".") {
					what := "a key"
					if s, ok := namedSections[strings.ToLower(path)]; ok && depth == 1 {
						what = "a " + s + " name"
					}
					bad(k.Line, "%s: %s cannot hold \".\" (it would be read as a path of keys): use letters, digits, - and _", key, what)
					continue
				}
				walk(n.Content[i+1], key, depth+1)
			}
		}
	}
	walk(&doc, "", 0)
	return literals, problems
}

// keyPath is the key path of key inside path, the key quoted when it is
// not a plain word.
func keyPath(path, key string) string {
	if !plainName.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// userKey writes a key path of the decoder (sites[pos].passwd) as the
// file's keys are written (sites.pos.passwd).
func userKey(k string) string {
	var b strings.Builder
	for k != "" {
		i := strings.IndexAny(k, "[.")
		if i < 0 {
			b.WriteString(k)
			break
		}
		b.WriteString(k[:i])
		if k[i] == '.' {
			k = k[i+1:]
			if k != "" {
				b.WriteByte('.')
			}
			continue
		}
		name, rest, _ := strings.Cut(k[i+1:], "]")
		b.WriteString(keyPath("x", name)[1:])
		k = rest
	}
	return b.String()
}

// wholeNumber refuses a value for a whole-number setting that does not
// fit it or is not whole: the decoder would wrap 99999999999999999999
// round to a negative number and cut 2.5 to 2 without a word.
func wholeNumber(_ reflect.Type, to reflect.Type, data any) (any, error) {
	var bits int
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		bits = 64
	case reflect.Int32:
		bits = 32
	default:
		return data, nil
	}
	limit := int64(1)<<(bits-1) - 1
	outOfRange := &rangeError{value: fmt.Sprint(data), limit: limit}
	switch v := data.(type) {
	case float64:
		if v != math.Trunc(v) {
			return nil, fmt.Errorf("%v is not a whole number", v)
		}
		if v >= float64(limit) || v < -float64(limit)-1 {
			return nil, outOfRange
		}
	case uint64:
		if v > uint64(limit) {
			return nil, outOfRange
		}
	case string:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 0, bits); errors.Is(err, strconv.ErrRange) {
			outOfRange.value, outOfRange.text = strings.TrimSpace(v), true
			return nil, outOfRange
		}
	}
	return data, nil
}

// wholeKinds are the kinds of whole-number settings.
var wholeKinds = map[reflect.Kind]bool{reflect.Int: true, reflect.Int8: true, reflect.Int16: true, reflect.Int32: true, reflect.Int64: true,
	reflect.Uint: true, reflect.Uint8: true, reflect.Uint16: true, reflect.Uint32: true, reflect.Uint64: true}

// rangeError is a whole number too large for its setting.
type rangeError struct {
	value string
	limit int64
	// text says value is as written (an environment variable or flag),
	// not a number the YAML parser made of the file's text.
	text bool
}

func (e *rangeError) Error() string {
	return fmt.Sprintf("%s is out of range: at most %d", e.value, e.limit)
}

// setting is a value that an environment variable or a flag gave a key:
// where it came from (POSBRIDGE_DB_BUSY_TIMEOUT, --data-dir) and the value.
type setting struct{ source, value string }

// decodeProblems lists the problems of a failed decoding, one line per key
// that could not be read: where the value came from (the file where, or
// the variable or flag in set, by key in lower case), the key as the file
// writes it, the value as written and what it should be. literals are the
// values of the file as written, by key path in lower case: YAML reads
// 99999999999999999999 as 1e+20.
func decodeProblems(where string, literals map[string]string, set map[string]setting, err error) error {
	var problems []error
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		if errors.As(e, &de) && e == error(de) {
			key := userKey(de.Name())
			src := where
			val, known := literals[strings.ToLower(key)]
			if s, ok := set[strings.ToLower(key)]; ok {
				src, val, known = s.source, s.value, true
			}
			msg := de.Unwrap().Error()
			var re *rangeError
			if errors.As(de.Unwrap(), &re) {
				if known && !re.text {
					re.value = val
				}
				msg = re.Error()
			}
			var pe *mapstructure.ParseError
			var ne *strconv.NumError
			parse := errors.As(de.Unwrap(), &pe)
			switch {
			case parse && errors.As(pe.Err, &ne) && wholeKinds[pe.Expected.Kind()]:
				msg = fmt.Sprintf("%q is not a whole number", ne.Num)
			case parse && pe.Expected.Kind() == reflect.Bool && known:
				msg = fmt.Sprintf("%q is not true or false", val)
			// The decoder's duration errors drop the value.
			case strings.HasPrefix(msg, "time: ") && known:
				msg = fmt.Sprintf("%q is not a duration (like 30s, 5m or 1h)", val)
			}
			problems = append(problems, fmt.Errorf("%w: %s: %s: %s", ErrInvalid, src, key, msg))
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if len(problems) == 0 {
		return fmt.Errorf("%w: %s or POSBRIDGE_* environment: %v", ErrInvalid, where, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return errors.Join(problems...)
}

// stepFlagsAsWritten gives the number-like flags of job steps to their
// commands as the file wrote them: YAML reads 99999999999999999999 as the
// float 1e+20, which a whole-number flag would call invalid syntax rather
// than out of range.
func stepFlagsAsWritten(c *Config, literals map[string]string) {
	for name, j := range c.Jobs {
		for i, st := range j.Steps {
			for k, v := range st.Flags {
				if _, ok := v.(float64); !ok {
					continue
				}
				p := keyPath(keyPath(keyPath(keyPath("jobs", name), "steps")+"["+strconv.Itoa(i)+"]", "flags"), k)
				if lit, ok := literals[strings.ToLower(p)]; ok {
					st.Flags[k] = lit
				}
			}
		}
	}
}
