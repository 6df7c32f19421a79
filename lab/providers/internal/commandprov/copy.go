// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// copyToRemoteInputs are the real CopyToRemoteInputs.
var copyToRemoteInputs = []string{"connection", "triggers", "source", "remotePath"}

// checkCopyToRemote mirrors the real CopyToRemote.Check: the inputs must decode (connection,
// source, remotePath required), and the source must be a path-based FileAsset or FileArchive
// (1.2.x also accepts a StringAsset). Like the real one it fills no defaults (the SDK sends them).
func checkCopyToRemote(news resource.PropertyMap) []failure {
	failures := checkScalars(news, map[string]string{"triggers": "array", "remotePath": "string"})
	if c, ok := news["connection"]; !ok || c.IsNull() {
		failures = append(failures, failure{"connection", "Missing required field 'connection' on 'remote.CopyToRemoteInputs'"})
	} else {
		failures = append(failures, checkConnection(c, "connection")...)
	}
	if v, ok := news["remotePath"]; !ok || v.IsNull() {
		failures = append(failures, failure{"remotePath", "Missing required field 'remotePath' on 'remote.CopyToRemoteInputs'"})
	}
	src, ok := news["source"]
	for ok && src.IsSecret() {
		src = src.SecretValue().Element
	}
	switch {
	case !ok || src.IsNull():
		failures = append(failures, failure{"asset", "either asset or archive must be set"})
	case src.ContainsUnknowns():
	case src.IsAsset():
		if a := src.AssetValue(); !a.IsPath() && !a.IsText() {
			failures = append(failures, failure{"asset", "asset must be a path-based file asset"})
		}
	case src.IsArchive():
		if !src.ArchiveValue().IsPath() {
			failures = append(failures, failure{"archive", "archive must be a path to a file or directory"})
		}
	default:
		failures = append(failures, failure{"asset", "either asset or archive must be set"})
	}
	return failures
}

func source(props resource.PropertyMap) resource.PropertyValue {
	v := props["source"]
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// sourceHash mirrors the real CopyToRemoteInputs.hash (the archive's or asset's hash), computing
// it when the engine did not send one.
func sourceHash(props resource.PropertyMap) string {
	v := source(props)
	switch {
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.Hash == "" {
			_ = a.EnsureHash()
		}
		return a.Hash
	case v.IsAsset():
		a := v.AssetValue()
		if a.Hash == "" {
			_ = a.EnsureHash()
		}
		return a.Hash
	}
	return ""
}

// createCopyToRemote mirrors the real CopyToRemote.Create: nothing on preview (empty id), else
// the copy, then id = 8 random hex characters.
func (p *Provider) createCopyToRemote(ctx context.Context, urn resource.URN, props resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	state := echoInputs(props, copyToRemoteInputs)
	if preview {
		return "", state, nil
	}
	if err := p.copy(ctx, urn, props); err != nil {
		return "", nil, err
	}
	id, err := resource.NewUniqueHex("", 8, 0)
	return id, state, err
}

// updateCopyToRemote mirrors the real CopyToRemote.Update: copy again only when the source hash
// or the remote path changed (a connection change alone copies nothing).
func (p *Provider) updateCopyToRemote(ctx context.Context, urn resource.URN, olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	state := echoInputs(news, copyToRemoteInputs)
	if preview {
		return state, nil
	}
	oldPath, _ := str(olds, "remotePath")
	newPath, _ := str(news, "remotePath")
	if sourceHash(news) != sourceHash(olds) || newPath != oldPath {
		if err := p.copy(ctx, urn, news); err != nil {
			return nil, err
		}
	}
	return state, nil
}

// copy mirrors the real copy(): dial, an SFTP client with concurrent writes, sftpCopy.
func (p *Provider) copy(ctx context.Context, urn resource.URN, props resource.PropertyMap) error {
	con, err := parseConnection(props)
	if err != nil {
		return err
	}
	remotePath, _ := str(props, "remotePath")
	src := source(props)
	var sourcePath string
	switch {
	case src.IsArchive():
		sourcePath = src.ArchiveValue().Path
	case src.IsAsset():
		sourcePath = src.AssetValue().Path
	}
	p.logf(ctx, diag.Debug, urn, false, "Creating file: %s:%s from local file %s", *con.Host, remotePath, sourcePath)

	client, closeClient, err := p.dial(ctx, urn, con)
	if err != nil {
		return err
	}
	defer closeClient()

	sftpClient, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return err
	}
	defer sftpClient.Close()

	if src.IsAsset() && !src.AssetValue().IsPath() {
		return writeText(sftpClient, src.AssetValue().Text, remotePath)
	}
	return sftpCopy(sftpClient, sourcePath, remotePath)
}

// writeText writes a StringAsset's text to the remote path.
func writeText(sftpClient *sftp.Client, text, dst string) error {
	remote, err := sftpClient.Create(dst)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dst, err)
	}
	defer remote.Close()
	if _, err := remote.Write([]byte(text)); err != nil {
		return fmt.Errorf("failed to write remote file %s: %w", dst, err)
	}
	return nil
}

// remoteStat returns nil, nil when the path does not exist.
func remoteStat(sftpClient *sftp.Client, path string) (fs.FileInfo, error) {
	info, err := sftpClient.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to stat remote path %s: %w", path, err)
	}
	return info, nil
}

// sftpCopy mirrors the real sftpCopy:
//
//	source | dest exists as dir | dest does not exist | dest exists as file
//	-------|--------------------|---------------------|--------------------
//	dir    | dest/dir           | dest/dir            | error
//	dir/   | dest/x for x in dir| dest/dir            | error
//	file   | dest/file          | dest                | dest (overwritten)
func sftpCopy(sftpClient *sftp.Client, sourcePath, destPath string) error {
	src, err := os.Open(sourcePath)
	if err != nil {
		return err
	}
	defer src.Close()
	srcInfo, err := src.Stat()
	if err != nil {
		return err
	}
	destStat, err := remoteStat(sftpClient, destPath)
	if err != nil {
		return err
	}
	dest := destPath
	if srcInfo.IsDir() {
		if destStat == nil {
			if err := sftpClient.Mkdir(dest); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
			}
		}
		if !strings.HasSuffix(sourcePath, "/") {
			dest = filepath.Join(dest, filepath.Base(sourcePath))
			destStat, err := remoteStat(sftpClient, dest)
			if err != nil {
				return err
			}
			if destStat != nil && !destStat.IsDir() {
				return fmt.Errorf("remote path %s exists but is not a directory", dest)
			}
			if destStat == nil {
				if err := sftpClient.Mkdir(dest); err != nil {
					return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
				}
			}
		}
		return copyDir(sftpClient, sourcePath, dest)
	}
	if destStat != nil && destStat.IsDir() {
		dest = filepath.Join(dest, filepath.Base(sourcePath))
	}
	return copyFile(sftpClient, sourcePath, dest)
}

func copyFile(sftpClient *sftp.Client, src, dst string) error {
	local, err := os.Open(src)
	if err != nil {
		return err
	}
	defer local.Close()
	remote, err := sftpClient.Create(dst)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dst, err)
	}
	defer remote.Close()
	if _, err := remote.ReadFrom(local); err != nil {
		return fmt.Errorf("failed to copy file %s to remote path %s: %w", src, dst, err)
	}
	return nil
}

func copyDir(sftpClient *sftp.Client, src, dst string) error {
	return fs.WalkDir(os.DirFS(src), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		remotePath := filepath.Join(dst, path)
		if !d.IsDir() {
			return copyFile(sftpClient, filepath.Join(src, path), remotePath)
		}
		dirInfo, err := remoteStat(sftpClient, remotePath)
		if err != nil {
			return err
		}
		if dirInfo == nil {
			if err := sftpClient.Mkdir(remotePath); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", remotePath, err)
			}
		} else if !dirInfo.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", remotePath)
		}
		return nil
	})
}
