// Node-RED settings for bench/webhook.sh: HTTP nodes only, on 127.0.0.1, no editor, quiet.
// The port, user directory and flow file come from the environment the script sets.
module.exports = {
    uiHost: '127.0.0.1',
    uiPort: Number(process.env.BENCH_PORT || 18082),
    userDir: process.env.BENCH_USERDIR,
    flowFile: process.env.BENCH_FLOW,
    httpAdminRoot: false,
    httpNodeRoot: '/',
    disableEditor: true,
    credentialSecret: false,
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    editorTheme: { tours: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
};
