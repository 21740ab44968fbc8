// Package authn orchestrates sign-in: it checks credentials against the
// directory through small interfaces, and regulates brute force with
// per-username and per-client-IP failure counters.
//
// Every failure looks the same from outside. An unknown username, a wrong
// password, a disabled account and an account without a password all return
// ErrInvalidCredentials after the same amount of hashing work, and failures
// are counted for unknown usernames exactly as for known ones, so neither
// the answer, its timing nor a lockout tells whether a user exists.
package authn
