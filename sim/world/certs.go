package world

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// servingCert is the certificate the components serve /healthz and
// /readyz with. Giving them one (ECDSA, made here) saves each the RSA key
// generation of a self-signed certificate at start.
type servingCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

func (c servingCert) flags() []string {
	return []string{"--tls-cert-file=" + c.certFile, "--tls-private-key-file=" + c.keyFile}
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 and
// localhost into dir.
func writeServingCert(dir string) (servingCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return servingCert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return servingCert{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "driftlab-world"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return servingCert{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return servingCert{}, err
	}
	c := servingCert{certFile: filepath.Join(dir, "world-serving.crt"), keyFile: filepath.Join(dir, "world-serving.key")}
	if err := os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return servingCert{}, err
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return servingCert{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return servingCert{}, err
	}
	c.pool = x509.NewCertPool()
	c.pool.AddCert(cert)
	return c, nil
}
