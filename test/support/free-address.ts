// An address on 127.0.0.1 that nothing listens at: a port the kernel handed out, then freed.
import net from 'node:net';

export async function freeAddress(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return address;
}
