package bench

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// memWatch records peak resident memory during one operation: this
// process's own (its peak is reset when the watch starts) and that of its
// descendants, sampled from /proc.
type memWatch struct {
	stop, done chan struct{}
	mu         sync.Mutex
	// peaks maps a kind of descendant (engine, provider, other) to its
	// largest VmHWM in KiB.
	peaks map[string]int64
	// selfReset says the process's own peak was reset at the start.
	selfReset bool
}

// sampleEvery is how often the descendants' VmHWM is read. VmHWM is a peak
// already, so a sample loses only what a process gained in its last interval.
const sampleEvery = 100 * time.Millisecond

func watchMemory() *memWatch {
	w := &memWatch{stop: make(chan struct{}), done: make(chan struct{}), peaks: map[string]int64{}}
	// Writing 5 to clear_refs resets the process's VmHWM to its current RSS.
	w.selfReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	go func() {
		defer close(w.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// end stops sampling and returns the peaks in MiB: the process's own, the
// engine's (pulumi CLI processes) and the Kubernetes provider's.
func (w *memWatch) end() (self, engine, provider float64) {
	close(w.stop)
	<-w.done
	kib := int64(0)
	if w.selfReset {
		kib = statusKiB("/proc/self/status", "VmHWM:")
	} else {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			kib = ru.Maxrss // the whole process's life: an upper bound
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return mib(kib), mib(w.peaks["engine"]), mib(w.peaks["provider"])
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// sample reads the VmHWM of every descendant of this process.
func (w *memWatch) sample() {
	for pid, name := range descendants(os.Getpid()) {
		hwm := statusKiB(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmHWM:")
		kind := "other"
		switch {
		case name == "pulumi":
			kind = "engine"
		case strings.HasPrefix(name, "pulumi-resource"): // comm is cut at 15 bytes
			kind = "provider"
		}
		w.mu.Lock()
		w.peaks[kind] = max(w.peaks[kind], hwm)
		w.mu.Unlock()
	}
}

// descendants returns the pids and command names of root's descendants.
func descendants(root int) map[int]string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	names := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		names[pid] = string(b[open+1 : end])
	}
	out := map[int]string{}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out[c] = names[c]
			queue = append(queue, c)
		}
	}
	return out
}

// statusKiB reads one "Key:  N kB" line of a /proc status file (0 when
// missing, e.g. for a process that exited or a zombie).
func statusKiB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
