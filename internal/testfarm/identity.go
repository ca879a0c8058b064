package testfarm

import (
	"os"
	"path/filepath"
	"time"

	"github.com/dcc-farm/dcc/internal/identity"
)

// Enroll issues a credential for name in role with the CA in stateDir
// (creating the CA if need be) and writes it to outDir/ROLE-NAME.pem,
// returning the path. It is what `broker enroll` does, in-process.
func Enroll(stateDir, role, name, outDir string) (string, error) {
	ca, err := identity.OpenCA(stateDir)
	if err != nil {
		return "", err
	}
	pem, err := ca.Issue(role, name, 24*time.Hour)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(outDir, role+"-"+name+".pem")
	if err := identity.WriteBundle(p, pem, true); err != nil {
		return "", err
	}
	return p, nil
}
