// The real node's sandbox ("pause") image, and a tiny test image: no registry is
// reachable here, so the image kubelet needs for every pod is built FROM scratch
// from this program.
//
//	pause                      hold the pod's namespaces until SIGTERM/SIGINT
//	pause -print TEXT -exit N  print TEXT, exit with status N (a test container)
//
// As PID 1 of a shared PID namespace it reaps orphaned children, like the upstream pause.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	text := flag.String("print", "", "print this line to stdout, then exit (see -exit)")
	code := flag.Int("exit", -1, "exit with this status after printing; -1: keep running")
	sleep := flag.Duration("sleep", 0, "sleep this long before exiting (with -exit)")
	flag.Parse()
	if *text != "" {
		fmt.Println(*text)
	}
	if *code >= 0 {
		time.Sleep(*sleep)
		os.Exit(*code)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
