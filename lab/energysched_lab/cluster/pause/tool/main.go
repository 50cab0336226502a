// A tiny test image for the real node (no registry is reachable, no busybox here):
//
//	tool print TEXT...   print the words, exit 0
//	tool api PATH        GET PATH from the API server as the pod's service account, through
//	                     the `kubernetes` Service ($KUBERNETES_SERVICE_HOST/PORT) with the
//	                     mounted token and CA, as an in-cluster client does; print the status
//	                     and the start of the body; exit 0 on 2xx, 1 otherwise
//	tool get URL         plain HTTP GET (pod-to-pod, pod-to-Service); same output and status
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func show(resp *http.Response) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	fmt.Printf("STATUS %d\n%s\n", resp.StatusCode, body)
	if resp.StatusCode/100 != 2 {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: tool print TEXT... | api PATH | get URL")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	switch os.Args[1] {
	case "print":
		fmt.Println(strings.Join(os.Args[2:], " "))
	case "api":
		token, err := os.ReadFile(saDir + "/token")
		if err != nil {
			fail("no service-account token: %v", err)
		}
		ca, err := os.ReadFile(saDir + "/ca.crt")
		if err != nil {
			fail("no CA: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
		req, _ := http.NewRequest("GET", "https://"+host+os.Args[2], nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			fail("GET %s: %v", req.URL, err)
		}
		show(resp)
	case "get":
		resp, err := client.Get(os.Args[2])
		if err != nil {
			fail("GET %s: %v", os.Args[2], err)
		}
		show(resp)
	default:
		fail("unknown command %q", os.Args[1])
	}
}
