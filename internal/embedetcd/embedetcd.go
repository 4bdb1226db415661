package embedetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Options configure Start. The zero value of each field means its default.
type Options struct {
	// Name is the member name. Default "driftlab".
	Name string
	// DataDir holds etcd's data; required.
	DataDir string
	// WALDir, when set, holds the WAL (for example on a fault's FUSE mount).
	WALDir string
	// LogFile receives etcd's log; default standard error.
	LogFile string
	// LogLevel is etcd's log level. Default "warn".
	LogLevel string
	// Tweak, when set, changes the configuration last.
	Tweak func(*embed.Config)
	// ReadyTimeout bounds the wait for etcd to serve. Default 60s.
	ReadyTimeout time.Duration
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd and waits until it serves. It retries with other ports
// when one was taken between probing and binding.
func Start(o Options) (*embed.Etcd, *url.URL, error) {
	if o.DataDir == "" {
		return nil, nil, errors.New("embedetcd: Options.DataDir is required")
	}
	if o.Name == "" {
		o.Name = "driftlab"
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cport, err1 := freePort()
		pport, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, err
		}
		curl := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(cport)}
		purl := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(pport)}
		cfg := embed.NewConfig()
		cfg.Name = o.Name
		cfg.Dir = o.DataDir
		cfg.WalDir = o.WALDir
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*curl}, []url.URL{*curl}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*purl}, []url.URL{*purl}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.Logger, cfg.LogLevel = "zap", o.LogLevel
		if o.LogFile != "" {
			cfg.LogOutputs = []string{o.LogFile}
		}
		if o.Tweak != nil {
			o.Tweak(cfg)
		}
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue // most likely a port taken between probe and bind
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, curl, nil
		case err := <-e.Err():
			e.Close()
			return nil, nil, err
		case <-time.After(o.ReadyTimeout):
			e.Close()
			return nil, nil, fmt.Errorf("etcd not ready after %s", o.ReadyTimeout)
		}
	}
	return nil, nil, lastErr
}
