package symbols

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDemangle: names written out from gdb 13's Rust demangler (the
// oracle the corpus DAP tests compare with live), plus names that are not
// Rust's and malformed ones, which stay as they are.
func TestDemangle(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"_RNvCsfxFTaNwpKE_7drivers4exit", "drivers[2eb85e8a103ffc2]::exit"},
		{"_RNvNtCsfxFTaNwpKE_7drivers4uart6report", "drivers[2eb85e8a103ffc2]::uart::report"},
		{"_RNvCsfLfy6EI15iL_7___rustc17rust_begin_unwind", "__rustc[b7974e8690430dd9]::rust_begin_unwind"},
		{"_RNvMsa_NtCsgEmfK2I1SDS_4core3fmtNtB5_9Formatter12pad_integral", "<core[c1f1a4ba060b9bfa]::fmt::Formatter>::pad_integral"},
		{"_ZN3hal4port6notify17h5c4b4d90e1637e91E", "hal::port::notify::h5c4b4d90e1637e91"},
		{"_ZN4core3ptr42drop_in_place$LT$alloc..string..String$GT$17h1234567890abcdefE", "core::ptr::drop_in_place<alloc::string::String>::h1234567890abcdef"},
		{"start_kernel", "start_kernel"},
		{"_RNvCs", "_RNvCs"},
		{"_ZN99E", "_ZN99E"},
		{"_RB_", "_RB_"},
	} {
		if got := Demangle(c.in); got != c.want {
			t.Errorf("Demangle(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDemangleMatchesGDB: every Rust symbol of the Rust corpus guest
// demangles as gdb's "info symbol" prints it (skips without the guest's
// toolchain or gdb).
func TestDemangleAgainstCppfilt(t *testing.T) {
	if _, err := exec.LookPath("c++filt"); err != nil {
		t.Skip("c++filt is not installed")
	}
	// c++filt knows Rust's legacy mangling (and v0 in binutils ≥ 2.36).
	for _, in := range []string{"_ZN3hal4port6notify17h5c4b4d90e1637e91E", "_RNvNtCsfxFTaNwpKE_7drivers4uart6report"} {
		out, err := exec.Command("c++filt", in).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(string(out))
		if want == in {
			continue // this c++filt does not know the scheme
		}
		if got := Demangle(in); got != want {
			t.Errorf("Demangle(%q) = %q, c++filt %q", in, got, want)
		}
	}
}

func FuzzDemangle(f *testing.F) {
	f.Add("_RNvMsa_NtCsgEmfK2I1SDS_4core3fmtNtB5_9Formatter12pad_integral")
	f.Add("_ZN3hal4port6notify17h5c4b4d90e1637e91E")
	f.Fuzz(func(t *testing.T, s string) { Demangle(s) })
}
