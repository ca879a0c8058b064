package broker

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watchFarm reloads the farm file as soon as it changes. It watches the
// directory, not the file, so that editors that replace the file (write a
// temporary and rename) are seen too. tickLoop also polls the file's
// modification time, for file systems without inotify (NFS).
func (b *Broker) watchFarm() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.log.Warn("farm file watch unavailable; polling only", zap.Error(err))
		return
	}
	defer w.Close()
	path, _ := filepath.Abs(b.cfg.FarmFile)
	if err := w.Add(filepath.Dir(path)); err != nil {
		b.log.Warn("farm file watch unavailable; polling only", zap.Error(err))
		return
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-b.closing:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if abs, _ := filepath.Abs(ev.Name); abs == path && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(100 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			b.log.Warn("farm file watch", zap.Error(err))
		case <-debounce:
			debounce = nil
			b.ReloadFarm()
		}
	}
}
