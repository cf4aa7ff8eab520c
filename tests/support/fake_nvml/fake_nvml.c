/*
 * A fake libnvidia-ml.so.1 for machines without an NVIDIA GPU.
 *
 * The real pynvml bindings load it through LD_LIBRARY_PATH and call it through ctypes,
 * so the bindings' struct layouts and error handling run for real. It implements the
 * entry points llm-tui calls, with the types and error codes of NVIDIA's nvml.h.
 *
 * What it reports comes from a script: the file named by $LLM_TUI_FAKE_NVML, re-read
 * whenever it changes (tests replace it atomically), one `key = value` per line:
 *
 *   init = OK                       or an error: DRIVER_NOT_LOADED, NO_PERMISSION, ...
 *   driver = 550.54.15
 *   count = 1                       or an error
 *   gpu.0.name = NVIDIA GeForce RTX 4050 Laptop GPU
 *   gpu.0.memory = TOTAL USED       bytes
 *   gpu.0.utilization = GPU MEMORY  percent
 *   gpu.0.temperature = 61          degrees C
 *   gpu.0.power = 28400             milliwatts
 *   gpu.0.power_limit = 80000       milliwatts
 *   gpu.0.clock.graphics = 1800     MHz (also .sm, .memory; max_clock.* likewise)
 *   gpu.0.compute_processes = PID:BYTES PID:NA ...   NA: the driver does not say
 *   gpu.0.graphics_processes = ...
 *   gpu.0.lost = 1                  every call on this GPU answers GPU_IS_LOST
 *
 * Any value may instead be an error name (NOT_SUPPORTED, GPU_IS_LOST, UNKNOWN, ...), which
 * that call then returns; a metric the script leaves out is NOT_SUPPORTED. When
 * $LLM_TUI_FAKE_NVML_LOG is set, each call appends its name there, one per line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st {
    unsigned int index;
} *nvmlDevice_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_UNKNOWN 999
#define NVML_VALUE_NOT_AVAILABLE_ULL 0xFFFFFFFFFFFFFFFFULL

#define MAX_ENTRIES 512
#define MAX_KEY 64
#define MAX_VALUE 1024
#define MAX_GPUS 16
#define MAX_PROCESSES 64

static const struct {
    const char *name;
    nvmlReturn_t code;
} ERRORS[] = {
    {"UNINITIALIZED", 1},      {"INVALID_ARGUMENT", 2},  {"NOT_SUPPORTED", 3},
    {"NO_PERMISSION", 4},      {"ALREADY_INITIALIZED", 5}, {"NOT_FOUND", 6},
    {"INSUFFICIENT_SIZE", 7},  {"INSUFFICIENT_POWER", 8}, {"DRIVER_NOT_LOADED", 9},
    {"TIMEOUT", 10},           {"IRQ_ISSUE", 11},         {"LIBRARY_NOT_FOUND", 12},
    {"FUNCTION_NOT_FOUND", 13}, {"CORRUPTED_INFOROM", 14}, {"GPU_IS_LOST", 15},
    {"RESET_REQUIRED", 16},    {"OPERATING_SYSTEM", 17},  {"LIB_RM_VERSION_MISMATCH", 18},
    {"IN_USE", 19},            {"MEMORY", 20},            {"NO_DATA", 21},
    {"UNKNOWN", 999},
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char keys[MAX_ENTRIES][MAX_KEY];
static char values[MAX_ENTRIES][MAX_VALUE];
static int entries = 0;
static struct stat loaded;
static int initialised = 0;
static struct nvmlDevice_st devices[MAX_GPUS];

static void log_call(const char *name) {
    const char *path = getenv("LLM_TUI_FAKE_NVML_LOG");
    if (path == NULL || *path == '\0') return;
    FILE *file = fopen(path, "a");
    if (file == NULL) return;
    fprintf(file, "%s\n", name);
    fclose(file);
}

static char *trim(char *text) {
    while (*text == ' ' || *text == '\t') text++;
    char *end = text + strlen(text);
    while (end > text && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return text;
}

/* Re-read the script when the file changed (another inode, size or time). */
static void reload(void) {
    const char *path = getenv("LLM_TUI_FAKE_NVML");
    struct stat now;
    if (path == NULL || stat(path, &now) != 0) {
        entries = 0;
        memset(&loaded, 0, sizeof loaded);
        return;
    }
    if (now.st_ino == loaded.st_ino && now.st_size == loaded.st_size &&
        now.st_mtim.tv_sec == loaded.st_mtim.tv_sec &&
        now.st_mtim.tv_nsec == loaded.st_mtim.tv_nsec)
        return;
    FILE *file = fopen(path, "r");
    if (file == NULL) return;
    entries = 0;
    char line[MAX_KEY + MAX_VALUE + 8];
    while (fgets(line, sizeof line, file) != NULL && entries < MAX_ENTRIES) {
        char *text = trim(line);
        if (*text == '\0' || *text == '#') continue;
        char *equals = strchr(text, '=');
        if (equals == NULL) continue;
        *equals = '\0';
        snprintf(keys[entries], MAX_KEY, "%s", trim(text));
        snprintf(values[entries], MAX_VALUE, "%s", trim(equals + 1));
        entries++;
    }
    fclose(file);
    loaded = now;
}

static const char *lookup(const char *key) {
    for (int i = entries - 1; i >= 0; i--)
        if (strcmp(keys[i], key) == 0) return values[i];
    return NULL;
}

static const char *device_key(char *buffer, size_t size, nvmlDevice_t device, const char *what) {
    snprintf(buffer, size, "gpu.%u.%s", device->index, what);
    return lookup(buffer);
}

/* The error a value names, else NVML_SUCCESS. */
static nvmlReturn_t error_in(const char *value) {
    if (value == NULL) return NVML_ERROR_NOT_SUPPORTED;
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
        if (strcmp(value, ERRORS[i].name) == 0) return ERRORS[i].code;
    return NVML_SUCCESS;
}

#define ENTER(name)                                 \
    log_call(name);                                 \
    pthread_mutex_lock(&lock);                      \
    reload();                                       \
    nvmlReturn_t result = NVML_SUCCESS;             \
    do {

#define LEAVE                                       \
    } while (0);                                    \
    pthread_mutex_unlock(&lock);                    \
    return result;

/* Every device call starts here: initialised, a handle we gave out, not lost. */
static nvmlReturn_t check_device(nvmlDevice_t device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || device < devices || device >= devices + MAX_GPUS)
        return NVML_ERROR_INVALID_ARGUMENT;
    char key[MAX_KEY];
    const char *lost = device_key(key, sizeof key, device, "lost");
    if (lost != NULL && strcmp(lost, "0") != 0) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static nvmlReturn_t read_uint(nvmlDevice_t device, const char *what, unsigned int *out) {
    nvmlReturn_t error = check_device(device);
    if (error) return error;
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    char key[MAX_KEY];
    const char *value = device_key(key, sizeof key, device, what);
    error = error_in(value);
    if (error) return error;
    *out = (unsigned int)strtoul(value, NULL, 10);
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_text(const char *text, char *out, unsigned int length) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, text, strlen(text) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    ENTER("nvmlInitWithFlags")
    const char *init = lookup("init");
    if (init != NULL && strcmp(init, "OK") != 0) {
        result = error_in(init);
        if (result == NVML_SUCCESS) result = NVML_ERROR_UNKNOWN; /* a word we do not know */
        break;
    }
    initialised++;
    LEAVE
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    ENTER("nvmlShutdown")
    if (!initialised) {
        result = NVML_ERROR_UNINITIALIZED;
        break;
    }
    initialised--;
    LEAVE
}

const char *nvmlErrorString(nvmlReturn_t code) {
    switch (code) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    ENTER("nvmlSystemGetDriverVersion")
    if (!initialised) {
        result = NVML_ERROR_UNINITIALIZED;
        break;
    }
    const char *driver = lookup("driver");
    result = copy_text(driver ? driver : "550.54.15", version, length);
    LEAVE
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    ENTER("nvmlSystemGetNVMLVersion")
    result = copy_text("12.550.54.15", version, length);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    ENTER("nvmlDeviceGetCount_v2")
    if (!initialised) {
        result = NVML_ERROR_UNINITIALIZED;
        break;
    }
    const char *value = lookup("count");
    if (value == NULL) value = "1";
    result = error_in(value);
    if (result) break;
    unsigned long n = strtoul(value, NULL, 10);
    *count = (unsigned int)(n > MAX_GPUS ? MAX_GPUS : n);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    ENTER("nvmlDeviceGetHandleByIndex_v2")
    if (!initialised) {
        result = NVML_ERROR_UNINITIALIZED;
        break;
    }
    if (index >= MAX_GPUS || device == NULL) {
        result = NVML_ERROR_INVALID_ARGUMENT;
        break;
    }
    devices[index].index = index;
    result = check_device(&devices[index]);
    if (result == NVML_SUCCESS) *device = &devices[index];
    LEAVE
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    ENTER("nvmlDeviceGetName")
    result = check_device(device);
    if (result) break;
    char key[MAX_KEY];
    const char *value = device_key(key, sizeof key, device, "name");
    result = copy_text(value ? value : "Fake GPU", name, length);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER("nvmlDeviceGetUUID")
    result = check_device(device);
    if (result) break;
    char text[64];
    snprintf(text, sizeof text, "GPU-00000000-0000-0000-0000-%012u", device->index);
    result = copy_text(text, uuid, length);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    ENTER("nvmlDeviceGetMemoryInfo")
    result = check_device(device);
    if (result) break;
    char key[MAX_KEY];
    const char *value = device_key(key, sizeof key, device, "memory");
    result = error_in(value);
    if (result) break;
    char *end;
    unsigned long long total = strtoull(value, &end, 10);
    unsigned long long used = strtoull(end, NULL, 10);
    memory->total = total;
    memory->used = used;
    memory->free = total > used ? total - used : 0;
    LEAVE
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *rates) {
    ENTER("nvmlDeviceGetUtilizationRates")
    result = check_device(device);
    if (result) break;
    char key[MAX_KEY];
    const char *value = device_key(key, sizeof key, device, "utilization");
    result = error_in(value);
    if (result) break;
    char *end;
    rates->gpu = (unsigned int)strtoul(value, &end, 10);
    rates->memory = (unsigned int)strtoul(end, NULL, 10);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    ENTER("nvmlDeviceGetTemperature")
    result = sensor == 0 ? read_uint(device, "temperature", temp) : NVML_ERROR_NOT_SUPPORTED;
    LEAVE
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    ENTER("nvmlDeviceGetPowerUsage")
    result = read_uint(device, "power", power);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER("nvmlDeviceGetEnforcedPowerLimit")
    result = read_uint(device, "power_limit", limit);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER("nvmlDeviceGetPowerManagementLimit")
    result = read_uint(device, "power_limit", limit);
    LEAVE
}

static const char *clock_name(int type) {
    switch (type) {
    case 0: return "graphics";
    case 1: return "sm";
    case 2: return "memory";
    case 3: return "video";
    default: return "unknown";
    }
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
    ENTER("nvmlDeviceGetClockInfo")
    char what[32];
    snprintf(what, sizeof what, "clock.%s", clock_name(type));
    result = read_uint(device, what, clock);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
    ENTER("nvmlDeviceGetMaxClockInfo")
    char what[32];
    snprintf(what, sizeof what, "max_clock.%s", clock_name(type));
    result = read_uint(device, what, clock);
    LEAVE
}

/* NVML's two-call protocol: a too-small array gets INSUFFICIENT_SIZE and the count. */
static nvmlReturn_t processes(nvmlDevice_t device, const char *what, unsigned int *count,
                              nvmlProcessInfo_t *infos) {
    nvmlReturn_t error = check_device(device);
    if (error) return error;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    char key[MAX_KEY];
    const char *value = device_key(key, sizeof key, device, what);
    if (value == NULL) value = "";
    error = error_in(value);
    if (error) return error;
    nvmlProcessInfo_t found[MAX_PROCESSES];
    unsigned int n = 0;
    char copy[MAX_VALUE];
    snprintf(copy, sizeof copy, "%s", value);
    char *save = NULL;
    for (char *item = strtok_r(copy, " ,", &save); item != NULL && n < MAX_PROCESSES;
         item = strtok_r(NULL, " ,", &save)) {
        char *colon = strchr(item, ':');
        if (colon == NULL) continue;
        *colon = '\0';
        found[n].pid = (unsigned int)strtoul(item, NULL, 10);
        found[n].usedGpuMemory = strcmp(colon + 1, "NA") == 0
                                     ? NVML_VALUE_NOT_AVAILABLE_ULL
                                     : strtoull(colon + 1, NULL, 10);
        found[n].gpuInstanceId = 0xFFFFFFFFu;
        found[n].computeInstanceId = 0xFFFFFFFFu;
        n++;
    }
    if (*count < n || (n > 0 && infos == NULL)) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *count = n;
    if (n > 0) memcpy(infos, found, n * sizeof found[0]);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    ENTER("nvmlDeviceGetComputeRunningProcesses_v3")
    result = processes(device, "compute_processes", count, infos);
    LEAVE
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    ENTER("nvmlDeviceGetGraphicsRunningProcesses_v3")
    result = processes(device, "graphics_processes", count, infos);
    LEAVE
}
