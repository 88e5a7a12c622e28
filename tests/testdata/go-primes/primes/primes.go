// Package primes finds primes with a sieve.
package primes

// Below returns the primes less than n, in order.
func Below(n int) []int {
	composite := make([]bool, n)
	var out []int
	for i := 2; i < n; i++ {
		if composite[i] {
			continue
		}
		out = append(out, i)
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	return out
}
