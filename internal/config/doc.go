// Package config builds the typed, validated Config of posbridge from a YAML
// file, POSBRIDGE_* environment variables and command-line flags. It is the
// only package that uses viper.
package config
