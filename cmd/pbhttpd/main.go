// Command pbhttpd is the local HTTPS partner of make bench (issue 14): an
// Increff-like sales posting endpoint that answers every POST or PUT with
// {"hasError": false, "errorMessage": ""}. It makes a CA and a certificate
// of its own for 127.0.0.1, writes the CA to DIR/ca.pem and its base URL to
// DIR/url, and serves until SIGTERM or SIGINT; then it writes to DIR/stats
// how many requests it answered and how many distinct messageIds it got.
// It is not part of the posbridge binary.
//
//	pbhttpd -dir DIR
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "folder for ca.pem, url and stats")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatalf("pbhttpd: %v", err)
	}
}

func run(dir string) error {
	caPEM, cert, err := makeCert()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		requests int
		ids      = map[string]bool{}
	)
	answer := []byte(`{"hasError": false, "errorMessage": ""}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			MessageID json.RawMessage `json:"messageId"`
		}
		d := json.NewDecoder(bytes.NewReader(body))
		for d.Decode(&ev) == nil {
			if len(ev.MessageID) > 0 {
				mu.Lock()
				ids[string(ev.MessageID)] = true
				mu.Unlock()
			}
			ev.MessageID = nil
		}
		mu.Lock()
		requests++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.ServeTLS(ln, "", "")
	url := "https://" + ln.Addr().String()
	if err := os.WriteFile(filepath.Join(dir, "url.tmp"), []byte(url+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, "url.tmp"), filepath.Join(dir, "url")); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	for s := range sig {
		mu.Lock()
		stats := fmt.Sprintf("requests %d\nmessageIds %d\n", requests, len(ids))
		if s == syscall.SIGUSR1 { // a checkpoint: report and start again
			requests, ids = 0, map[string]bool{}
		}
		mu.Unlock()
		if err := os.WriteFile(filepath.Join(dir, "stats.tmp"), []byte(stats), 0o644); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "stats.tmp"), filepath.Join(dir, "stats")); err != nil {
			return err
		}
		if s != syscall.SIGUSR1 {
			return srv.Close()
		}
	}
	return nil
}

// makeCert makes a CA and a certificate for 127.0.0.1 signed by it.
func makeCert() ([]byte, tls.Certificate, error) {
	var leaf tls.Certificate
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, leaf, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbhttpd CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, leaf, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, leaf, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, leaf, err
	}
	leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), leaf, nil
}
