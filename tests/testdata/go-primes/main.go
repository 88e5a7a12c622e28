// Command hoistdemo prints what it computes with its second package: the test and the build
// benchmark change the greeting to make a one-file change.
package main

import (
	"fmt"
	"runtime"
	"strings"

	"example.com/hoistdemo/primes"
)

const greeting = "hello"

func main() {
	p := primes.Below(1000)
	sum := 0
	for _, x := range p {
		sum += x
	}
	fmt.Printf("%s from go: %d primes below 1000, sum %d, last %d\n", greeting, len(p), sum, p[len(p)-1])
	fmt.Println(strings.ToUpper(runtime.GOOS) + "/" + runtime.GOARCH + " " + runtime.Version())
}
