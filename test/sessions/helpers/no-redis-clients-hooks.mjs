// Module hooks for a child process: importing the redis client packages fails loudly.
export async function resolve(specifier, context, next) {
  if (specifier === 'ioredis' || specifier === 'redis' || specifier.startsWith('@redis/')) throw new Error(`client package loaded: ${specifier}`);
  return next(specifier, context);
}
