// Package e2e is privnum's test on a real switch: it runs `privnum serve`
// beside a real Asterisk 22, configured from the project's own
// asterisk-conf drop-ins, with SIP peers written with sipgo as the caller's
// trunk and the carrier, and asserts on the SIP messages the peers
// received. It also measures call setup against the switch's own floors.
//
// It runs only when PRIVNUM_ASTERISK names an Asterisk 22 installation (the
// prefix holding sbin/asterisk), and needs redis-server on the PATH:
//
//	PRIVNUM_ASTERISK=/opt/asterisk go test -count=1 -v ./e2e/
//
// Without PRIVNUM_ASTERISK the tests skip. The call setup measurement
// places 21 calls each way; PRIVNUM_E2E_SETUP_ROUNDS=101 places more, for
// a steadier median on a busy machine:
//
//	PRIVNUM_ASTERISK=/opt/asterisk PRIVNUM_E2E_SETUP_ROUNDS=101 go test -count=1 -v -run TestE2E/call_setup ./e2e/
package e2e
