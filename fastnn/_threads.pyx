# cython: language_level=3
"""Can this process start n more threads right now?

libgomp, asked for a team it cannot start (no memory for the stacks, a thread limit), prints
``libgomp: Thread creation failed`` and ends the process.  Before the engine first runs a team
of a new size, the Python layer starts that many threads here, with the stack size libgomp
will use, and joins them: a failure is an OSError the caller turns into a Python exception.
"""
from libc.errno cimport errno
from libc.string cimport strerror


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_attr_t:
        pass
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_attr_init(pthread_attr_t *attr)
    int pthread_attr_destroy(pthread_attr_t *attr)
    int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size)
    int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                       void *(*start)(void *) noexcept nogil, void *arg)
    int pthread_join(pthread_t t, void **ret)
    int pthread_mutex_init(pthread_mutex_t *m, const void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)

from libc.stdlib cimport malloc, free


cdef void *_hold(void *arg) noexcept nogil:
    # wait until every thread of the probe has started: they all exist at once, as a team does
    cdef pthread_mutex_t *m = <pthread_mutex_t *>arg
    pthread_mutex_lock(m)
    pthread_mutex_unlock(m)
    return NULL


def probe(int n, size_t stacksize=0):
    """Start ``n`` threads (``stacksize`` bytes of stack each, 0: the default), all alive at
    once, then join them.  Raise OSError(errno, message) if one cannot be started."""
    cdef pthread_t *ts
    cdef pthread_attr_t attr
    cdef pthread_mutex_t m
    cdef int i, started = 0, err = 0
    if n <= 0:
        return
    ts = <pthread_t *>malloc(sizeof(pthread_t) * n)
    if ts == NULL:
        raise MemoryError()
    pthread_attr_init(&attr)
    if stacksize > 0:
        err = pthread_attr_setstacksize(&attr, stacksize)
    pthread_mutex_init(&m, NULL)
    with nogil:
        pthread_mutex_lock(&m)
        if err == 0:
            for i in range(n):
                err = pthread_create(&ts[i], &attr, _hold, &m)
                if err != 0:
                    break
                started += 1
        pthread_mutex_unlock(&m)
        for i in range(started):
            pthread_join(ts[i], NULL)
    pthread_mutex_destroy(&m)
    pthread_attr_destroy(&attr)
    free(ts)
    if err != 0:
        raise OSError(err, strerror(err).decode(errors="replace"))
