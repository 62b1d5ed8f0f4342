// Package config builds the typed, validated Config of posbridge from a YAML
// file, POSBRIDGE_* environment variables and command-line flags. It is the
// only package that uses viper. Domain packages do not import it: it
// translates its structs into their types (Config.Partner gives a
// partner.Profile, Config.JobSpecs the job.Jobs), and the CLI passes them on.
package config
