// Drive one pusher-js 8 client under Node for the conformance tests.
//
// Usage: node pusher_js_client.js '<options JSON>'
//   options: {"key", "host", "port", "cluster"?, "activityTimeout"?}
//
// The script prints one JSON object per line on stdout ("type" names the
// record) and reads one JSON command per line on stdin ("op" names it).
// Channel authorization and user sign-in go through customHandler callbacks
// that print an "auth_request" record and wait for the matching "auth" command,
// so the test process signs with the Python SDK and no HTTP endpoint is needed.
//
// Commands:
//   {"op": "subscribe", "channel": c}
//   {"op": "unsubscribe", "channel": c}
//   {"op": "trigger", "channel": c, "event": e, "data": d, "repeat"?: n}
//       sends the client event n times (default 1) in one burst
//   {"op": "signin"}
//   {"op": "auth", "id": n, "data": {...}} or {"op": "auth", "id": n, "error": "text"}
//   {"op": "disconnect"}
//   {"op": "exit"}
'use strict';

const readline = require('readline');
const Pusher = require('pusher-js');

function emit(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

const options = JSON.parse(process.argv[2]);

// Pending customHandler callbacks, keyed by the id sent in "auth_request".
const pendingAuth = new Map();
let nextAuthId = 1;

function requestAuth(kind, params, callback) {
  const id = nextAuthId++;
  pendingAuth.set(id, callback);
  const record = { type: 'auth_request', id: id, kind: kind, socket_id: params.socketId };
  if (params.channelName !== undefined) {
    record.channel = params.channelName;
  }
  emit(record);
}

const pusher = new Pusher(options.key, {
  // pusher-js 8 requires a cluster even when wsHost points elsewhere.
  cluster: options.cluster || 'local',
  wsHost: options.host,
  wsPort: options.port,
  wssPort: options.port,
  forceTLS: false,
  enabledTransports: ['ws'],
  disableStats: true,
  activityTimeout: options.activityTimeout,
  channelAuthorization: {
    customHandler: (params, callback) => requestAuth('channel', params, callback),
  },
  userAuthentication: {
    customHandler: (params, callback) => requestAuth('user', params, callback),
  },
});

const connection = pusher.connection;

connection.bind('state_change', (states) => {
  emit({ type: 'state', previous: states.previous, current: states.current });
});

connection.bind('connected', () => {
  emit({ type: 'connected', socket_id: connection.socket_id });
});

connection.bind('error', (error) => {
  // The error object can hold a WebSocket event; keep only plain fields.
  const record = { type: 'connection_error', error_type: error && error.type };
  if (error && error.data) {
    record.data = error.data;
  }
  if (error && error.error && error.error.data) {
    record.data = error.error.data;
  }
  emit(record);
});

// Every frame as pusher-js decoded it, so the tests can check fields such as
// user_id that the channel callbacks do not pass on.
connection.bind('message', (event) => {
  emit({
    type: 'message',
    event: event.event,
    channel: event.channel,
    data: event.data,
    user_id: event.user_id,
  });
});

pusher.user.bind_global((eventName, data) => {
  emit({ type: 'user_event', event: eventName, data: data });
});

function presenceSnapshot(members) {
  const ids = [];
  members.each((member) => ids.push(member.id));
  ids.sort();
  return { count: members.count, ids: ids, me: members.me };
}

// Channels whose callbacks are bound, so that a repeated subscribe command
// does not bind them twice.
const boundChannels = new Set();

function subscribe(name) {
  const channel = pusher.subscribe(name);
  if (boundChannels.has(name)) {
    return;
  }
  boundChannels.add(name);

  channel.bind('pusher:subscription_succeeded', (data) => {
    const record = { type: 'subscribed', channel: name };
    if (name.startsWith('presence-')) {
      record.members = presenceSnapshot(channel.members);
    }
    emit(record);
  });

  channel.bind('pusher:subscription_error', (error) => {
    emit({ type: 'subscription_error', channel: name, error: error });
  });

  channel.bind('pusher:member_added', (member) => {
    emit({ type: 'member_added', channel: name, member: member });
  });

  channel.bind('pusher:member_removed', (member) => {
    emit({ type: 'member_removed', channel: name, member: member });
  });

  channel.bind_global((eventName, data) => {
    if (eventName.startsWith('pusher:')) {
      return;
    }
    emit({ type: 'event', channel: name, event: eventName, data: data });
  });
}

function resolveAuth(command) {
  const callback = pendingAuth.get(command.id);
  if (callback === undefined) {
    emit({ type: 'command_error', message: 'no pending auth request with id ' + command.id });
    return;
  }

  pendingAuth.delete(command.id);
  if (command.error) {
    callback(new Error(command.error), null);
  } else {
    callback(null, command.data);
  }
}

function runCommand(command) {
  switch (command.op) {
    case 'subscribe':
      subscribe(command.channel);
      break;
    case 'unsubscribe':
      pusher.unsubscribe(command.channel);
      break;
    case 'trigger': {
      const channel = pusher.channel(command.channel);
      const repeat = command.repeat || 1;
      let sent = 0;
      for (let i = 0; channel && i < repeat; i++) {
        if (channel.trigger(command.event, command.data)) {
          sent++;
        }
      }
      emit({ type: 'triggered', channel: command.channel, event: command.event, sent: sent });
      break;
    }
    case 'signin':
      pusher.signin();
      // The promise also resolves when the sign-in ends without success;
      // user_data is set only after a valid pusher:signin_success.
      pusher.user.signinDonePromise.then(() => {
        if (pusher.user.user_data !== null) {
          emit({ type: 'signed_in', user_data: pusher.user.user_data });
        } else {
          emit({ type: 'signin_ended', user_data: null });
        }
      });
      break;
    case 'auth':
      resolveAuth(command);
      break;
    case 'disconnect':
      pusher.disconnect();
      break;
    case 'exit':
      pusher.disconnect();
      process.exit(0);
      break;
    default:
      emit({ type: 'command_error', message: 'unknown op ' + JSON.stringify(command.op) });
  }
}

const input = readline.createInterface({ input: process.stdin });

input.on('line', (line) => {
  if (!line.trim()) {
    return;
  }

  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    emit({ type: 'command_error', message: 'invalid JSON command: ' + error.message });
    return;
  }

  try {
    runCommand(command);
  } catch (error) {
    emit({ type: 'command_error', message: String(error && error.message) });
  }
});

// The test process closing stdin ends the client.
input.on('close', () => {
  pusher.disconnect();
  process.exit(0);
});

emit({ type: 'ready', version: require('pusher-js/package.json').version });
