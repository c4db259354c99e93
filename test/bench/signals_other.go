//go:build !unix

package main

import "os"

// No user signals here: -profile is not available.
var profileStart, profileStop os.Signal

func profileOnSignal(string) {}
